//! The `kubernetes` probe: the count of Ready pods matching a selector in a namespace, or
//! a deployment's available replicas.
//!
//! A pod being deleted does not count as Ready, even while its Ready condition lags. A
//! deployment's status lags too: it counts only once it is for the current spec
//! (`observedGeneration`), and never above its pods that are Ready and not being deleted
//! (a killed pod and its starting replacement). The detail names pods not Ready yet and
//! pods terminating.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};

use super::{ProbeContext, Sample};
use crate::experiment::model::KubernetesProbe;
use crate::platform::kubernetes::api::{Failure, classify, pod_ready, shown_cluster};
use crate::platform::kubernetes::{client_for, rbac};

/// Bound on one API call of a probe.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// A client and the context it uses (`None`: in-cluster).
#[derive(Clone)]
pub(crate) struct Connected {
    client: kube::Client,
    context: Option<String>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// Clients by the probe's `context` (None: the default).
pub(crate) type KubeCache = Arc<tokio::sync::Mutex<HashMap<Option<String>, Connected>>>;

pub async fn sample(p: &KubernetesProbe, ctx: &ProbeContext) -> Sample {
    let start = Instant::now();
    let connected = {
        let mut cache = ctx.kube.lock().await;
        match cache.get(&p.context) {
            Some(c) => c.clone(),
            None => match client_for(p.context.as_deref()).await {
                Ok((client, context)) => {
                    let c = Connected { client, context };
                    cache.insert(p.context.clone(), c.clone());
                    c
                }
                Err(detail) => return Sample::fail(start.elapsed(), detail),
            },
        }
    };
    let mut s = sample_with(&connected.client, connected.context.as_deref(), p).await;
    s.latency = start.elapsed();
    s
}

/// One attempt on a given client; `context` only names the cluster in messages.
pub async fn sample_with(
    client: &kube::Client,
    context: Option<&str>,
    p: &KubernetesProbe,
) -> Sample {
    let start = Instant::now();
    let counted = match (&p.deployment, p.available) {
        (Some(name), want) => {
            let want = want.unwrap_or(at_least_one());
            available(client, &p.namespace, name)
                .await
                .map(|c| c.map(|(n, pods)| (n, want, "available", pods)))
        }
        (None, _) => {
            let want = p.ready.unwrap_or(at_least_one());
            list_pods(client, &p.namespace, p.selector.clone())
                .await
                .map(|pods| Ok((pods.ready, want, "ready", pods)))
        }
    };
    let latency = start.elapsed();
    match counted {
        Ok(Err(stale)) => Sample::fail(latency, stale),
        Ok(Ok((n, want, word, pods))) => {
            let detail = format!("{n} {word} (want {want}{})", pods.others());
            if want.holds(n) {
                Sample::pass(latency, detail)
            } else {
                Sample::fail(latency, detail)
            }
        }
        Err(Bounded::Timeout) => Sample::fail(
            latency,
            format!(
                "the Kubernetes API ({}) did not answer within {}s",
                shown_cluster(context),
                API_TIMEOUT.as_secs()
            ),
        ),
        Err(Bounded::Api(perm, e)) => {
            let detail = match classify(&e, perm, &p.namespace, &shown_cluster(context)) {
                Failure::NotFound => format!(
                    "deployment `{}` not found in namespace `{}`",
                    p.deployment.as_deref().unwrap_or(""),
                    p.namespace
                ),
                Failure::Refused(m) | Failure::Unavailable(m) => m,
            };
            Sample::fail(latency, detail)
        }
    }
}

fn at_least_one() -> crate::experiment::units::CountExpr {
    crate::experiment::units::CountExpr {
        op: crate::experiment::units::CountOp::Ge,
        value: 1,
    }
}

enum Bounded {
    Timeout,
    /// The API's answer to the call needing this permission.
    Api(rbac::Permission, kube::Error),
}

async fn bounded<T>(
    perm: rbac::Permission,
    fut: impl Future<Output = kube::Result<T>>,
) -> Result<T, Bounded> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Err(_) => Err(Bounded::Timeout),
        Ok(r) => r.map_err(|e| Bounded::Api(perm, e)),
    }
}

/// The pods a count looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pods {
    /// Ready, and not being deleted.
    pub ready: u64,
    /// Not Ready yet (a replacement starting), or no longer.
    pub not_ready: u64,
    /// Being deleted: never counted, whatever their Ready condition still says.
    pub terminating: u64,
}

impl Pods {
    pub fn count(pods: &[Pod]) -> Pods {
        let mut c = Pods::default();
        for pod in pods {
            if pod.metadata.deletion_timestamp.is_some() {
                c.terminating += 1;
            } else if pod_ready(pod) {
                c.ready += 1;
            } else {
                c.not_ready += 1;
            }
        }
        c
    }

    /// `; 1 not ready, 1 terminating` for a detail, when there are such pods.
    fn others(&self) -> String {
        let mut parts = Vec::new();
        if self.not_ready > 0 {
            parts.push(format!("{} not ready", self.not_ready));
        }
        if self.terminating > 0 {
            parts.push(format!("{} terminating", self.terminating));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {}", parts.join(", "))
        }
    }
}

async fn list_pods(
    client: &kube::Client,
    namespace: &str,
    selector: Option<String>,
) -> Result<Pods, Bounded> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams {
        label_selector: selector,
        ..Default::default()
    };
    let list = bounded(rbac::LIST_PODS, api.list(&lp)).await?;
    Ok(Pods::count(&list.items))
}

/// A deployment's available replicas, as far as they can be trusted: its status must be
/// for its current spec (`observedGeneration`), and it lags behind its pods (a pod force
/// deleted a moment ago, its replacement still starting), so the count is also bounded by
/// its pods that are Ready and not being deleted. `Err` (inside): the status is stale.
async fn available(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Result<(u64, Pods), String>, Bounded> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = bounded(rbac::GET_DEPLOYMENTS, api.get(name)).await?;
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Ok(Err(format!(
            "deployment `{name}`'s status is for generation {observed}, its spec is at {generation}: the change is not rolled out yet"
        )));
    }
    let selector = d.spec.map(|s| selector_string(&s.selector));
    let pods = list_pods(client, namespace, selector).await?;
    let available = status.available_replicas.unwrap_or(0).max(0) as u64;
    Ok(Ok((available.min(pods.ready), pods)))
}

/// A label selector in the list API's syntax.
pub fn selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_in_list_syntax() {
        let s: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "api", "tier": "web"},
            "matchExpressions": [
                {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_string(&s),
            "app=api,tier=web,track in (stable,canary),env notin (dev),owner,!legacy"
        );
    }
}
