//! The `docker` probe: counts running (and healthy) containers that match labels and a name.
//!
//! "Running" is Docker's `running` state: a paused container does not count, nor does one
//! that is restarting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;

use super::{ProbeContext, Sample};
use crate::experiment::model::DockerProbe;
use crate::experiment::units::CountExpr;

/// Connected, version-negotiated clients by the probe's `host` (None: the default).
pub(crate) type DockerCache = Arc<tokio::sync::Mutex<HashMap<Option<String>, (Docker, String)>>>;

use crate::platform::docker::API_TIMEOUT;
use crate::platform::docker_endpoint;

pub async fn sample(p: &DockerProbe, ctx: &ProbeContext) -> Sample {
    let start = Instant::now();
    let host = p.host.clone();
    let (docker, shown) = match client(&ctx.docker, host.clone()).await {
        Ok(d) => d,
        Err(detail) => return Sample::fail(start.elapsed(), detail),
    };
    // Validation requires `running` or `healthy`; without either, expect one running.
    let running = match (p.running, p.healthy) {
        (None, None) => Some(CountExpr {
            op: crate::experiment::units::CountOp::Ge,
            value: 1,
        }),
        (r, _) => r,
    };
    let mut ok = true;
    let mut parts = Vec::new();
    for (want, healthy, word) in [(running, false, "running"), (p.healthy, true, "healthy")] {
        let Some(want) = want else { continue };
        match count(&docker, p, healthy).await {
            Ok(n) => {
                ok &= want.holds(n);
                parts.push(format!("{n} {word} (want {want})"));
            }
            Err(e) => {
                // Reconnect (and renegotiate) on the next sample.
                ctx.docker.lock().await.remove(&host);
                return Sample::fail(start.elapsed(), describe(&shown, e));
            }
        }
    }
    let latency = start.elapsed();
    let detail = parts.join(", ");
    if ok {
        Sample::pass(latency, detail)
    } else {
        Sample::fail(latency, detail)
    }
}

/// A connected client and the endpoint as shown in messages.
async fn client(cache: &DockerCache, host: Option<String>) -> Result<(Docker, String), String> {
    // Held across connecting so that concurrent samples do not all connect at once.
    let mut cache = cache.lock().await;
    if let Some(d) = cache.get(&host) {
        return Ok(d.clone());
    }
    // The same daemon the docker CLI (and a target without `host`) would use.
    let endpoint = docker_endpoint::resolve_here(host.as_deref(), None)?;
    let docker = crate::platform::docker::connect(&endpoint).await?;
    cache.insert(host, (docker.clone(), endpoint.host.clone()));
    Ok((docker, endpoint.host))
}

enum Failure {
    Api(bollard::errors::Error),
    Timeout,
}

async fn count(docker: &Docker, p: &DockerProbe, healthy: bool) -> Result<u64, Failure> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("status".into(), vec!["running".into()]);
    if healthy {
        filters.insert("health".into(), vec!["healthy".into()]);
    }
    if !p.labels.is_empty() {
        let labels = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        filters.insert("label".into(), labels);
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = tokio::time::timeout(API_TIMEOUT, docker.list_containers(Some(options)))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(Failure::Api)?;
    let matching = list.iter().filter(|c| match &p.name {
        None => true,
        Some(m) => c.names.iter().flatten().any(|n| m.matches(n)),
    });
    Ok(matching.count() as u64)
}

fn describe(host: &str, failure: Failure) -> String {
    match failure {
        Failure::Timeout => format!(
            "cannot reach Docker at {host}: no answer within {}s",
            API_TIMEOUT.as_secs()
        ),
        Failure::Api(e) => crate::platform::docker::describe(host, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::from_json as probe;

    #[tokio::test]
    async fn counts_nothing_for_an_unused_label() {
        if !crate::test_support::require_docker() {
            return;
        }
        let ctx = ProbeContext::new().unwrap();
        let labels = serde_json::json!({"faultline.test/unused-label-7f3a": "nobody"});
        let p = probe(serde_json::json!({"labels": labels, "running": 0}));
        let s = sample(&p, &ctx).await;
        assert!(s.ok, "{s:?}");
        assert_eq!(s.detail, "0 running (want == 0)");

        let p = probe(serde_json::json!({"labels": labels, "running": ">= 1"}));
        let s = sample(&p, &ctx).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "0 running (want >= 1)");

        let p = probe(
            serde_json::json!({"labels": labels, "name": "/^x/", "running": "== 0", "healthy": ">= 1"}),
        );
        let s = sample(&p, &ctx).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "0 running (want == 0), 0 healthy (want >= 1)");
        // The client was connected once and reused.
        assert_eq!(ctx.docker.lock().await.len(), 1);
    }

    fn which_ssh() -> bool {
        std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[tokio::test]
    async fn unreachable_docker_fails_with_reason() {
        let ctx = ProbeContext::new().unwrap();
        let p = probe(serde_json::json!({"host": "unix:///nonexistent/docker.sock", "running": 1}));
        let s = sample(&p, &ctx).await;
        assert!(!s.ok);
        assert!(
            s.detail
                .starts_with("cannot reach Docker at unix:///nonexistent/docker.sock: "),
            "{}",
            s.detail
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let host = format!("tcp://{addr}");
        let p = probe(serde_json::json!({"host": host, "running": 1}));
        let s = sample(&p, &ctx).await;
        assert!(!s.ok);
        assert_eq!(
            s.detail,
            format!("cannot reach Docker at {host}: connection refused")
        );
        assert!(ctx.docker.lock().await.is_empty());

        let p = probe(serde_json::json!({"host": "npipe:////./pipe/docker_engine", "running": 1}));
        let s = sample(&p, &ctx).await;
        assert!(
            s.detail
                .starts_with("unsupported Docker host `npipe:////./pipe/docker_engine`"),
            "{}",
            s.detail
        );

        // An ssh host that does not answer: ssh's own words.
        if which_ssh() {
            let host = format!("ssh://nobody@127.0.0.1:{}", addr.port());
            let p = probe(serde_json::json!({"host": host, "running": 1}));
            let s = sample(&p, &ctx).await;
            assert!(
                s.detail
                    .starts_with(&format!("cannot reach Docker at {host}: ssh ended")),
                "{}",
                s.detail
            );
        } else {
            // Recorded, not passed in silence (a failure under CI=true).
            crate::test_support::skip::skip(
                crate::test_support::skip::Skip::Missing,
                "`ssh` is not installed (Debian package `openssh-client`): the ssh part of this test did not run",
            );
        }
    }
}
