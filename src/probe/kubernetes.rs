//! The `kubernetes` probe: the count of Ready pods matching a selector in a namespace, or
//! a deployment's available replicas.
//!
//! A pod being deleted does not count as Ready, even while its Ready condition lags.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
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
            let api: Api<Deployment> = Api::namespaced(client.clone(), &p.namespace);
            let want = want.unwrap_or(at_least_one());
            bounded(api.get(name)).await.map(|d| {
                let n = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
                (n.max(0) as u64, want, "available")
            })
        }
        (None, _) => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
            let lp = ListParams {
                label_selector: p.selector.clone(),
                ..Default::default()
            };
            let want = p.ready.unwrap_or(at_least_one());
            bounded(api.list(&lp)).await.map(|list| {
                let n = list
                    .items
                    .iter()
                    .filter(|pod| pod.metadata.deletion_timestamp.is_none() && pod_ready(pod))
                    .count();
                (n as u64, want, "ready")
            })
        }
    };
    let latency = start.elapsed();
    match counted {
        Ok((n, want, word)) => {
            let detail = format!("{n} {word} (want {want})");
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
        Err(Bounded::Api(e)) => {
            let perm = if p.deployment.is_some() {
                rbac::GET_DEPLOYMENTS
            } else {
                rbac::LIST_PODS
            };
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
    Api(kube::Error),
}

async fn bounded<T>(fut: impl std::future::Future<Output = kube::Result<T>>) -> Result<T, Bounded> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Err(_) => Err(Bounded::Timeout),
        Ok(r) => r.map_err(Bounded::Api),
    }
}
