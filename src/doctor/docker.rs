//! Which Docker endpoint is used and why, and whether its engine answers.

use super::Check;
use crate::experiment::model::DockerTls;
use crate::platform::{docker, docker_endpoint, docker_engine};

const FIX: &str = "Docker targets and the docker probe are unavailable: start the daemon, or set DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for tcp://), DOCKER_CONTEXT, or target.docker.host";

/// The endpoint (the experiment, DOCKER_HOST, a context, the local socket), whether the
/// engine answers there, and what a remote one means.
pub(super) async fn check(host: Option<&str>, tls: Option<&DockerTls>) -> Vec<Check> {
    let endpoint = match docker_endpoint::resolve_here(host, tls) {
        Ok(e) => e,
        Err(e) => return vec![Check::new("Docker endpoint", Err(e), FIX)],
    };
    let reach = if endpoint.is_local() {
        "local: every strategy is available (host strategies need root)"
    } else {
        "remote: faults act through the Docker API (pause, kill through the API, network through a sidecar, cpu/memory/disk through exec); the host checks below are about this machine, not the daemon's"
    };
    let at = Check::new(
        "Docker endpoint",
        Ok(format!("{} {}; {reach}", endpoint.host, endpoint.why())),
        "",
    );
    let engine = async {
        let d = docker::connect(&endpoint).await?;
        match docker_engine::engine(&d).await {
            Ok(engine) => Ok(format!(
                "engine {} {} (API {}, faultline speaks {}{}) at {}; {}",
                engine.name(),
                engine.version,
                engine.api_version,
                d.client_version(),
                if engine.rootless { ", rootless" } else { "" },
                endpoint.host,
                engine.works(&endpoint.host)
            )),
            Err(e) => Err(docker::describe(&endpoint.host, &e)),
        }
    };
    vec![at, Check::new("Docker", engine.await, FIX)]
}
