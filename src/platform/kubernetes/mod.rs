//! The Kubernetes platform on kube-rs: a client from a kubeconfig context or in-cluster,
//! Running pods by namespace and selectors, and the pod operations faults are built from.
//!
//! A [`Target`] is a pod: `id` is its UID, `name` its name, `labels` its labels. Its
//! namespace is the platform's: the endpoint, and so the journal's
//! [`PlatformRef`](crate::journal::PlatformRef), is `NAMESPACE@CONTEXT`, or `NAMESPACE`
//! alone in-cluster, so that `faultline recover` reaches the same cluster and namespace.
//! The context is the one actually used (the kubeconfig's current one when the experiment
//! names none). Calls on a pod by name check its UID where the API allows, so a pod
//! recreated under the same name (a StatefulSet's) is never taken for the target.
//!
//! Helpers, never selected as targets (label `faultline.helper`):
//! - `pause`: a privileged pod `faultline-pause-<UID>` on the target's node ([`pause`]).
//! - `network`: an ephemeral container `faultline-net-<hex>` in the target pod ([`network`]);
//!   its journal record ([`NetAccess::Sidecar`]`::helper`) is `POD/CONTAINER`.
//!
//! - `cpu_stress`: an ephemeral container named by the stressor's marker, whose PID 1 is
//!   the stressor; revert kills it and confirms by the container's `terminated` state.
//! - the nfqueue `delayer`: likewise an ephemeral container named by its marker
//!   (`faultline-delayer-<hex>`), running `faultline delayer` from the helper image as
//!   root with NET_ADMIN; revert sends SIGTERM first and confirms by its `terminated` state.
//!
//! The helpers' image is `tc_image` (the network fault's own, else `--tc-image` or
//! `FAULTLINE_TC_IMAGE`): the pause helper and the stressor need `sh` and `sleep`, the
//! network helper also `tc`, the nfqueue engine `iptables` and `faultline` (the `helper`
//! target of deploy/Dockerfile). Every command put into a pod spec goes through
//! [`expand::escape`]: Kubernetes expands `$(VAR)` and `$$` in them.

pub mod api;
pub mod expand;
pub mod network;
pub mod node_helper;
pub mod pause;
pub mod rbac;
pub mod signal;

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, AttachParams, AttachedProcess, DeleteParams, ListParams, Patch, PatchParams, PostParams,
    Preconditions,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};

use super::{ExecOutput, NetAccess, NetnsRequest, Placement, Platform, PlatformError, Target};
use crate::experiment::model::{KubernetesTarget, NetworkStrategy};
use crate::experiment::units::{Duration, Signal};
pub use crate::platform::docker::{HELPER_LABEL, PROTECTED_LABEL};
use api::{
    ContainerState, Failure, container_names, container_state, container_status, ephemeral_status,
    pod_phase, pod_ready, pod_uid,
};
use rbac::Permission;

/// How long a pause holds when the caller does not say ([`Platform::pause`] rather than
/// [`Platform::pause_for`]): the helper thaws by itself after it.
/// Why host placements are refused here.
const NOT_ON_THE_NODE: &str = "strategy `host` is not available on Kubernetes (faultline does not run on the pod's node): use `exec` or `auto`, which add an ephemeral container to the pod";

pub const DEFAULT_PAUSE_LIFETIME: StdDuration = StdDuration::from_secs(3600);

/// Waits and bounds; tests shorten them.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// One API call.
    pub api: StdDuration,
    /// Between two looks at a helper.
    pub poll: StdDuration,
    /// A helper to start (an image pull included).
    pub start: StdDuration,
    /// A helper to end after it was told to.
    pub stop: StdDuration,
    /// One exec.
    pub exec: StdDuration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            api: StdDuration::from_secs(15),
            poll: StdDuration::from_millis(500),
            start: StdDuration::from_secs(120),
            stop: StdDuration::from_secs(25),
            exec: StdDuration::from_secs(30),
        }
    }
}

/// The endpoint: `NAMESPACE@CONTEXT`, or `NAMESPACE` for in-cluster.
pub fn endpoint(namespace: &str, context: Option<&str>) -> String {
    match context {
        Some(c) => format!("{namespace}@{c}"),
        None => namespace.to_string(),
    }
}

/// The namespace and context of an [`endpoint`] (a namespace never contains `@`).
pub fn parse_endpoint(endpoint: &str) -> (String, Option<String>) {
    match endpoint.split_once('@') {
        Some((ns, ctx)) => (ns.to_string(), Some(ctx.to_string())),
        None => (endpoint.to_string(), None),
    }
}

/// A client for `context`; without one, for KUBECONFIG's (or `~/.kube/config`'s) current
/// context, else in-cluster. Returns the context used (`None`: in-cluster).
pub async fn client_for(context: Option<&str>) -> Result<(Client, Option<String>), String> {
    let why = |e: &(dyn std::error::Error + 'static)| crate::causes::error_chain(e);
    let (config, used) = match context {
        Some(c) => {
            let options = KubeConfigOptions {
                context: Some(c.to_string()),
                ..Default::default()
            };
            let config = Config::from_kubeconfig(&options)
                .await
                .map_err(|e| format!("cannot use kubeconfig context `{c}`: {}", why(&e)))?;
            (config, Some(c.to_string()))
        }
        None => match Kubeconfig::read() {
            Ok(kubeconfig) => {
                let current = kubeconfig.current_context.clone();
                let config =
                    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await
                        .map_err(|e| format!("cannot use the kubeconfig: {}", why(&e)))?;
                (config, current)
            }
            Err(kubeconfig) => match Config::incluster() {
                Ok(config) => (config, None),
                Err(in_cluster) => {
                    return Err(format!(
                        "no Kubernetes configuration: no kubeconfig ({}) and not inside a cluster ({}); set KUBECONFIG, or `context` under target.kubernetes",
                        why(&kubeconfig),
                        why(&in_cluster)
                    ));
                }
            },
        },
    };
    let client = Client::try_from(config)
        .map_err(|e| format!("cannot set up the Kubernetes client: {}", why(&e)))?;
    Ok((client, used))
}

/// The in-cluster client, and nothing else: an endpoint recorded in-cluster must never
/// be reverted through some kubeconfig that happens to be around.
fn in_cluster_client() -> Result<Client, String> {
    let config = Config::incluster().map_err(|e| {
        format!(
            "the fault was applied from inside a cluster, and this process is not in one: {}",
            crate::causes::error_chain(&e)
        )
    })?;
    Client::try_from(config).map_err(|e| {
        format!(
            "cannot set up the Kubernetes client: {}",
            crate::causes::error_chain(&e)
        )
    })
}

/// Whether a listed pod may be a target: Running, not being deleted, neither protected
/// nor one of faultline's helpers.
pub fn eligible(pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k));
    pod_phase(pod) == "Running"
        && pod.metadata.deletion_timestamp.is_none()
        && label(PROTECTED_LABEL).is_none_or(|v| v != "true")
        && label(HELPER_LABEL).is_none()
        && pod.metadata.uid.is_some()
        && pod.metadata.name.is_some()
}

/// The pod faultline itself runs in (in-cluster): never a target.
fn own_pod() -> Option<(String, String)> {
    let name = std::env::var("HOSTNAME").ok()?;
    let ns =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()?;
    Some((ns.trim().to_string(), name))
}

/// What a node helper pod is waited for.
#[derive(Clone, Copy)]
struct HelperJob {
    /// How messages name it: `pause`, `kill`.
    name: &'static str,
    /// What it does to the container: `freeze`, `signal`.
    verb: &'static str,
    /// The fault, as its messages name it.
    fault: &'static str,
    /// What its image needs.
    needs: &'static str,
    /// Done when the pod is ready (the pause helper holds the freeze while it lives);
    /// otherwise when the helper has ended with 0 (it reports what it did).
    until_ready: bool,
}

const PAUSE_JOB: HelperJob = HelperJob {
    name: "pause",
    verb: "freeze",
    fault: "pause",
    needs: "`sh` and `sleep`",
    until_ready: true,
};

const KILL_JOB: HelperJob = HelperJob {
    name: "kill",
    verb: "signal",
    fault: "kill with `container`",
    needs: "`sh`, `find`, `head` and `kill`",
    until_ready: false,
};

/// Why an exec into a helper did not run.
enum ExecError {
    Platform(PlatformError),
    /// The pod is gone, or is another pod now.
    PodGone,
    /// The helper container has ended, with this exit code.
    HelperEnded {
        code: i32,
        reason: String,
    },
}

impl ExecError {
    /// What an exec into a container of the pod of `target` answers: the pod gone is the
    /// target gone; `ended` tells what an ended container means for that exec, from its
    /// exit code and reason.
    fn of_target(
        self,
        target: &Target,
        ended: impl FnOnce(i32, String) -> PlatformError,
    ) -> PlatformError {
        match self {
            ExecError::Platform(e) => e,
            ExecError::PodGone => PlatformError::Gone(target.name.clone()),
            ExecError::HelperEnded { code, reason } => ended(code, reason),
        }
    }
}

pub struct KubernetesPlatform {
    client: Client,
    spec: KubernetesTarget,
    context: Option<String>,
    tc_image: Option<String>,
    timing: Timing,
}

impl KubernetesPlatform {
    /// Ends the processes marked `marker` in the target's own container (an exec of the
    /// kill script) and confirms none is left by what the script counted.
    async fn stop_in_container(&self, target: &Target, marker: &str) -> Result<(), PlatformError> {
        let script = crate::platform::host::kill_by_marker_script(marker);
        let out = self
            .exec(target, &["sh".into(), "-c".into(), script])
            .await?;
        match crate::platform::host::remaining(&out.stdout) {
            Some(0) => Ok(()),
            Some(n) => Err(PlatformError::Refused(format!(
                "{n} process(es) of faultline ({marker}) still run in pod `{}`",
                target.name
            ))),
            None => Err(PlatformError::Refused(format!(
                "cannot check faultline's processes in pod `{}`: {}",
                target.name,
                out.stderr.trim()
            ))),
        }
    }

    pub async fn connect(spec: &KubernetesTarget) -> Result<Self, PlatformError> {
        let (client, context) = client_for(spec.context.as_deref())
            .await
            .map_err(PlatformError::Unavailable)?;
        Ok(Self::with_client(client, spec.clone(), context))
    }

    /// Connects to a recorded [`endpoint`].
    pub async fn reconnect(endpoint: &str) -> Result<Self, PlatformError> {
        let (namespace, context) = parse_endpoint(endpoint);
        let client = match &context {
            Some(c) => client_for(Some(c)).await.map(|(client, _)| client),
            None => in_cluster_client(),
        }
        .map_err(PlatformError::Unavailable)?;
        let spec = KubernetesTarget {
            context: context.clone(),
            namespace,
            ..Default::default()
        };
        Ok(Self::with_client(client, spec, context))
    }

    /// A platform on a given client (tests pass a mock); `context` is the one it uses,
    /// `None` for in-cluster.
    pub fn with_client(client: Client, spec: KubernetesTarget, context: Option<String>) -> Self {
        KubernetesPlatform {
            client,
            spec,
            context,
            tc_image: None,
            timing: Timing::default(),
        }
    }

    /// The default helper image (`--tc-image`, `FAULTLINE_TC_IMAGE`).
    pub fn with_tc_image(mut self, image: Option<String>) -> Self {
        self.tc_image = image;
        self
    }

    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    fn ns(&self) -> &str {
        &self.spec.namespace
    }

    /// Waits until each killed pod is gone from the API: a 404, or its name held by another
    /// pod (a StatefulSet's replacement). Recovery after a kill is timed from here, not
    /// from the DELETE: a pod deleted with a grace period stays Terminating, its
    /// containers stopping, for up to that period. With grace 0 (force) the object goes at
    /// once, before its containers have stopped on the node, so this returns at once.
    /// Returns how long it waited.
    pub async fn wait_gone(
        &self,
        killed: &[Target],
        timeout: StdDuration,
    ) -> Result<StdDuration, PlatformError> {
        let start = tokio::time::Instant::now();
        for target in killed {
            loop {
                match self.target_pod(target).await {
                    Err(PlatformError::Gone(_)) => break,
                    Err(e) => return Err(e),
                    Ok(_) if start.elapsed() >= timeout => {
                        return Err(PlatformError::Unavailable(format!(
                            "pod `{}` is still terminating {timeout:?} after it was deleted",
                            target.name,
                        )));
                    }
                    Ok(_) => tokio::time::sleep(self.timing.poll).await,
                }
            }
        }
        Ok(start.elapsed())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.ns())
    }

    fn classify(&self, perm: Permission, e: &kube::Error) -> Failure {
        api::classify(
            e,
            perm,
            self.ns(),
            &api::shown_cluster(self.context.as_deref()),
        )
    }

    /// Bounds one call; the outer error is a timeout, the inner the API's answer.
    async fn send<T>(
        &self,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, PlatformError> {
        tokio::time::timeout(self.timing.api, fut)
            .await
            .map_err(|_| {
                PlatformError::Unavailable(format!(
                    "the Kubernetes API ({}) did not answer within {}s",
                    api::shown_cluster(self.context.as_deref()),
                    self.timing.api.as_secs()
                ))
            })
    }

    /// One call on `object`: a 404 means it is gone.
    async fn call<T>(
        &self,
        perm: Permission,
        object: &str,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, PlatformError> {
        self.send(fut)
            .await?
            .map_err(|e| self.classify(perm, &e).into_platform(object))
    }

    /// Deletes a pod, with the grace period in the body and, for the audit trail, the
    /// query (kubectl's form); `uid` makes it a precondition (409 when it differs).
    async fn delete_pod(&self, name: &str, grace: u32, uid: Option<&str>) -> kube::Result<()> {
        let dp = DeleteParams {
            grace_period_seconds: Some(grace),
            preconditions: uid.map(|u| Preconditions {
                uid: Some(u.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let mut req = kube::core::Request::new(Pod::url_path(&(), Some(self.ns())))
            .delete(name, &dp)
            .map_err(kube::Error::BuildRequest)?;
        let uri = format!("{}gracePeriodSeconds={grace}", req.uri());
        *req.uri_mut() = uri.parse().expect("a valid URI with one more query pair");
        self.client
            .request::<serde_json::Value>(req)
            .await
            .map(|_| ())
    }

    /// The target pod as it is now; `Gone` when it was deleted or replaced.
    async fn target_pod(&self, target: &Target) -> Result<Pod, PlatformError> {
        let pod = self
            .call(rbac::GET_PODS, &target.name, self.pods().get(&target.name))
            .await?;
        if pod_uid(&pod) != target.id {
            return Err(PlatformError::Gone(target.name.clone()));
        }
        Ok(pod)
    }

    /// The container a container-level fault acts on (`container`, default the first)
    /// and its runtime ID, once it runs.
    fn container_of(&self, pod: &Pod, target: &Target) -> Result<(String, String), PlatformError> {
        let names = container_names(pod);
        let name = match &self.spec.container {
            Some(c) if names.contains(&c.as_str()) => c.clone(),
            Some(c) => return Err(no_container(pod, target, c)),
            None => names.first().map(ToString::to_string).ok_or_else(|| {
                PlatformError::Refused(format!("pod `{}` has no containers", target.name))
            })?,
        };
        let status = container_status(pod, &name);
        if container_state(status) != ContainerState::Running {
            return Err(PlatformError::Refused(format!(
                "container `{name}` of pod `{}` is not running",
                target.name
            )));
        }
        let id = status
            .and_then(|s| s.container_id.as_deref())
            .map(pause::strip_runtime)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                PlatformError::Refused(format!(
                    "container `{name}` of pod `{}` has no container ID yet",
                    target.name
                ))
            })?;
        Ok((name, id.to_string()))
    }

    /// Waits until a node helper pod has done its job on `container` (see [`HelperJob`])
    /// and returns what it said; its failure, a helper that cannot start, or one still at
    /// work after the start timeout is refused.
    async fn wait_helper(
        &self,
        job: &HelperJob,
        helper: &str,
        target: &Target,
        container: &str,
    ) -> Result<String, PlatformError> {
        let HelperJob {
            name,
            verb,
            needs,
            until_ready,
            ..
        } = *job;
        let deadline = tokio::time::Instant::now() + self.timing.start;
        loop {
            let pod = match self.send(self.pods().get(helper)).await? {
                Ok(p) => p,
                Err(e) => {
                    return Err(match self.classify(rbac::GET_PODS, &e) {
                        Failure::NotFound => PlatformError::Refused(format!(
                            "the {name} helper `{helper}` was deleted before it could {verb} the container"
                        )),
                        other => other.into_platform(helper),
                    });
                }
            };
            if until_ready && pod_ready(&pod) {
                return Ok(String::new());
            }
            let status = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first());
            let waiting = match container_state(status) {
                ContainerState::Ended {
                    code: 0, message, ..
                } if !until_ready => return Ok(message),
                ContainerState::Ended {
                    code,
                    reason,
                    message,
                } => {
                    let why = if message.is_empty() {
                        format!("the helper ended ({reason}, exit {code})")
                    } else {
                        message
                    };
                    return Err(PlatformError::Refused(format!(
                        "cannot {verb} container `{container}` of pod `{}`: {why}",
                        target.name
                    )));
                }
                ContainerState::Broken { reason, message } => {
                    return Err(PlatformError::Refused(format!(
                        "the {name} helper cannot start: {reason}: {message} (its image comes from --tc-image or FAULTLINE_TC_IMAGE: the node must be able to pull it, and it needs {needs})"
                    )));
                }
                ContainerState::Starting { reason } => reason,
                ContainerState::Running => None,
            };
            if pod_phase(&pod) == "Failed" {
                let s = pod.status.as_ref();
                return Err(PlatformError::Refused(format!(
                    "the {name} helper failed on its node: {} {}",
                    s.and_then(|s| s.reason.as_deref()).unwrap_or(""),
                    s.and_then(|s| s.message.as_deref()).unwrap_or("")
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                let state = waiting.map(|r| format!(" (it is {r})")).unwrap_or_default();
                let did = if until_ready {
                    format!(
                        "report container `{container}` of pod `{}` frozen",
                        target.name
                    )
                } else {
                    format!("{verb} container `{container}` of pod `{}`", target.name)
                };
                return Err(PlatformError::Refused(format!(
                    "the {name} helper `{helper}` did not {did} within {}s{state}",
                    self.timing.start.as_secs()
                )));
            }
            tokio::time::sleep(self.timing.poll).await;
        }
    }

    /// The target's node, and the image of the node helper that does `job` there.
    fn node_and_image(
        &self,
        pod: &Pod,
        target: &Target,
        job: &HelperJob,
    ) -> Result<(String, &str), PlatformError> {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .ok_or_else(|| {
                PlatformError::Refused(format!("pod `{}` is not on a node yet", target.name))
            })?;
        let image = self.tc_image.as_deref().ok_or_else(|| {
            PlatformError::Refused(format!(
                "{} on Kubernetes runs a helper pod on the target's node: name its image (it needs {}) with --tc-image or FAULTLINE_TC_IMAGE",
                job.fault, job.needs
            ))
        })?;
        Ok((node, image))
    }

    /// Creates a node helper pod. One of an earlier run under the same name is replaced
    /// once it has ended; one still at work is refused with `busy`.
    async fn create_helper(
        &self,
        helper: &Pod,
        name: &str,
        busy: String,
    ) -> Result<(), PlatformError> {
        let created = self
            .send(self.pods().create(&PostParams::default(), helper))
            .await?;
        let Err(e) = created else {
            return Ok(());
        };
        if api::status(&e).is_none_or(|s| s.code != 409) {
            return Err(self.classify(rbac::CREATE_PODS, &e).into_platform(name));
        }
        let existing = self
            .call(rbac::GET_PODS, name, self.pods().get(name))
            .await?;
        if !matches!(pod_phase(&existing), "Succeeded" | "Failed") {
            return Err(PlatformError::Refused(busy));
        }
        self.remove_helper(name).await?;
        self.call(
            rbac::CREATE_PODS,
            name,
            self.pods().create(&PostParams::default(), helper),
        )
        .await
        .map(|_| ())
    }

    /// Adds an ephemeral container to the target pod (`patch`, see [`network`]); a pod
    /// that is another one now (its UID differs) is gone.
    async fn patch_ephemeral(
        &self,
        target: &Target,
        patch: &serde_json::Value,
    ) -> Result<(), PlatformError> {
        let patched = self
            .send(self.pods().patch_ephemeral_containers(
                &target.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            ))
            .await?;
        let Err(e) = patched else {
            return Ok(());
        };
        let uid_mismatch = api::status(&e)
            .is_some_and(|s| s.code == 409 || (s.code == 422 && s.message.contains("uid")));
        Err(if uid_mismatch {
            PlatformError::Gone(target.name.clone())
        } else {
            self.classify(rbac::PATCH_EPHEMERAL, &e)
                .into_platform(&target.name)
        })
    }

    /// Deletes a pause helper (its trap thaws the container) and waits until it is gone.
    async fn remove_helper(&self, name: &str) -> Result<(), PlatformError> {
        match self.send(self.delete_pod(name, 15, None)).await? {
            Ok(()) => {}
            Err(e) => match self.classify(rbac::DELETE_PODS, &e) {
                Failure::NotFound => return Ok(()),
                other => return Err(other.into_platform(name)),
            },
        }
        let deadline = tokio::time::Instant::now() + self.timing.stop;
        loop {
            match self.send(self.pods().get(name)).await? {
                Err(e) => match self.classify(rbac::GET_PODS, &e) {
                    Failure::NotFound => return Ok(()),
                    other => return Err(other.into_platform(name)),
                },
                Ok(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(PlatformError::Unavailable(format!(
                        "the pause helper `{name}` is still terminating after {}s (is its node reachable?); it thaws the container when it ends",
                        self.timing.stop.as_secs()
                    )));
                }
                Ok(_) => tokio::time::sleep(self.timing.poll).await,
            }
        }
    }

    /// Waits until an ephemeral container runs: `what` names it in messages (`network
    /// helper`, `stressor`), `needs` what its image must have.
    async fn wait_ephemeral(
        &self,
        target: &Target,
        name: &str,
        image: &str,
        what: &str,
        needs: &str,
    ) -> Result<(), PlatformError> {
        let deadline = tokio::time::Instant::now() + self.timing.start;
        loop {
            let pod = self.target_pod(target).await?;
            let status = ephemeral_status(&pod, name);
            let waiting = match container_state(status) {
                ContainerState::Running => return Ok(()),
                ContainerState::Broken { reason, message } => {
                    return Err(PlatformError::Refused(format!(
                        "the {what} cannot start in pod `{}`: {reason}: {message} (image `{image}`: the node must be able to pull it, and it needs {needs})",
                        target.name
                    )));
                }
                ContainerState::Ended {
                    code,
                    reason,
                    message,
                } => {
                    return Err(PlatformError::Refused(format!(
                        "the {what} in pod `{}` ended at once ({reason}, exit {code}){}: image `{image}` needs {needs}",
                        target.name,
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {message}")
                        }
                    )));
                }
                ContainerState::Starting { reason } => reason,
            };
            if tokio::time::Instant::now() >= deadline {
                let state = waiting.map(|r| format!(" (it is {r})")).unwrap_or_default();
                return Err(PlatformError::Refused(format!(
                    "the {what} in pod `{}` did not start within {}s{state}",
                    target.name,
                    self.timing.start.as_secs()
                )));
            }
            tokio::time::sleep(self.timing.poll).await;
        }
    }

    /// Runs `argv` in a container of `pod` over the exec websocket. `uid`, when known,
    /// tells a replaced pod from the target.
    async fn exec_in(
        &self,
        uid: Option<&str>,
        pod: &str,
        container: &str,
        argv: &[String],
    ) -> Result<ExecOutput, ExecError> {
        let ap = AttachParams::default()
            .container(container)
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let attached = match self.send(self.pods().exec(pod, argv.to_vec(), &ap)).await {
            Err(timeout) => return Err(ExecError::Platform(timeout)),
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(self.exec_failed(uid, pod, container, &e).await),
        };
        match tokio::time::timeout(self.timing.exec, collect(attached)).await {
            Err(_) => Err(ExecError::Platform(PlatformError::Unavailable(format!(
                "`{}` in pod `{pod}` did not finish within {}s",
                argv.join(" "),
                self.timing.exec.as_secs()
            )))),
            Ok(r) => r.map_err(ExecError::Platform),
        }
    }

    /// Runs `argv` in the container `container` of the target pod, `what` in messages: a
    /// container that has ended is refused.
    async fn exec_in_target(
        &self,
        target: &Target,
        container: &str,
        what: &str,
        argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        let out = self.exec_in(Some(&target.id), &target.name, container, argv);
        out.await.map_err(|e| {
            e.of_target(target, |code, reason| {
                PlatformError::Refused(format!(
                    "{what} of pod `{}` has ended ({reason}, exit {code})",
                    target.name
                ))
            })
        })
    }

    /// Why an exec was refused: the pod or the helper may be gone.
    async fn exec_failed(
        &self,
        uid: Option<&str>,
        pod: &str,
        container: &str,
        e: &kube::Error,
    ) -> ExecError {
        let failure = self.classify(rbac::EXEC_CREATE, e);
        if matches!(api::status(e).map(|s| s.code), Some(401 | 403)) {
            return ExecError::Platform(failure.into_platform(pod));
        }
        let current = match self.send(self.pods().get(pod)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e2)) if self.classify(rbac::GET_PODS, &e2) == Failure::NotFound => {
                return ExecError::PodGone;
            }
            _ => return ExecError::Platform(failure.into_platform(pod)),
        };
        if uid.is_some_and(|u| u != pod_uid(&current)) {
            return ExecError::PodGone;
        }
        match ephemeral_status(&current, container) {
            // Not in this pod: the pod was replaced under the same name.
            None if uid.is_none() => ExecError::PodGone,
            status => match container_state(status) {
                ContainerState::Ended { code, reason, .. } => {
                    ExecError::HelperEnded { code, reason }
                }
                _ => ExecError::Platform(failure.into_platform(pod)),
            },
        }
    }

    /// Waits until the network helper has ended (or its pod is gone).
    async fn wait_net_helper_ended(&self, pod: &str, container: &str) -> Result<(), PlatformError> {
        let deadline = tokio::time::Instant::now() + self.timing.stop;
        loop {
            let current = match self.send(self.pods().get(pod)).await? {
                Ok(p) => p,
                Err(e) => match self.classify(rbac::GET_PODS, &e) {
                    Failure::NotFound => return Ok(()),
                    other => return Err(other.into_platform(pod)),
                },
            };
            let status = ephemeral_status(&current, container);
            match status {
                None => return Ok(()),
                Some(s) if matches!(container_state(Some(s)), ContainerState::Ended { .. }) => {
                    return Ok(());
                }
                Some(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(PlatformError::Unavailable(format!(
                        "the network helper `{container}` in pod `{pod}` is still running {}s after it was told to stop",
                        self.timing.stop.as_secs()
                    )));
                }
                Some(_) => tokio::time::sleep(self.timing.poll).await,
            }
        }
    }
}

/// How an in-target process is named in messages, and what its image needs.
fn process_words(argv: &[String]) -> (&'static str, String) {
    if argv.first().map(String::as_str) == Some("faultline")
        && argv.get(1).map(String::as_str) == Some("http-proxy")
    {
        (
            "HTTP proxy",
            "`faultline`, `sh` and `iptables` (the `helper` target of deploy/Dockerfile)".into(),
        )
    } else if argv.first().map(String::as_str) == Some("faultline") {
        (
            "nfqueue delayer",
            "`faultline`, `tc` and `iptables` (the `helper` target of deploy/Dockerfile)".into(),
        )
    } else {
        ("stressor", "`sh`".into())
    }
}

/// The restart count of container `name` of `pod` and its runtime ID; `running` refuses a
/// container that does not run now (there is nothing to signal).
fn container_restarts(
    pod: &Pod,
    target: &Target,
    name: &str,
    running: bool,
) -> Result<(i32, String), PlatformError> {
    let Some(status) = container_status(pod, name) else {
        return Err(no_container(pod, target, name));
    };
    if running && container_state(Some(status)) != ContainerState::Running {
        return Err(PlatformError::Refused(format!(
            "container `{name}` of pod `{}` is not running: there is nothing to signal",
            target.name
        )));
    }
    let id = status
        .container_id
        .as_deref()
        .map(pause::strip_runtime)
        .unwrap_or("")
        .to_string();
    if running && id.is_empty() {
        return Err(PlatformError::Refused(format!(
            "container `{name}` of pod `{}` has no container ID yet",
            target.name
        )));
    }
    Ok((status.restart_count, id))
}

/// The refusal for a container `name` that the target pod does not have.
fn no_container(pod: &Pod, target: &Target, name: &str) -> PlatformError {
    PlatformError::Refused(format!(
        "pod `{}` has no container `{name}` (it has: {})",
        target.name,
        container_names(pod).join(", ")
    ))
}

/// Single-quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Drains an exec's stdout and stderr and reads its exit status.
async fn collect(mut attached: AttachedProcess) -> Result<ExecOutput, PlatformError> {
    async fn drain(r: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf).await;
        }
        buf
    }
    let status = attached.take_status();
    let (stdout, stderr) = tokio::join!(drain(attached.stdout()), drain(attached.stderr()));
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let joined = attached.join().await;
    let mut out = ExecOutput {
        code: -1,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    match (status, joined) {
        (Some(s), _) => match network::exit_code(&s) {
            Some(code) => out.code = code,
            // The command did not start (e.g. not in the image): the message says why.
            None => {
                if !out.stderr.is_empty() && !out.stderr.ends_with('\n') {
                    out.stderr.push('\n');
                }
                out.stderr
                    .push_str(s.message.as_deref().unwrap_or("").trim());
            }
        },
        (None, Err(e)) => {
            return Err(PlatformError::Unavailable(format!(
                "the exec stream broke: {}",
                crate::causes::error_chain(&e)
            )));
        }
        (None, Ok(())) => {
            return Err(PlatformError::Unavailable(
                "the exec ended without an exit status".into(),
            ));
        }
    }
    Ok(out)
}

#[async_trait]
impl Platform for KubernetesPlatform {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn endpoint(&self) -> String {
        endpoint(self.ns(), self.context.as_deref())
    }

    async fn peer_pods(
        &self,
        peers: &crate::experiment::model::PodPeers,
    ) -> Result<Vec<crate::platform::Peer>, PlatformError> {
        let ns = peers.namespace.as_deref().unwrap_or(self.ns()).to_string();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let lp = ListParams {
            label_selector: Some(peers.selector.clone()),
            ..Default::default()
        };
        let list = self
            .send(api.list(&lp))
            .await?
            .map_err(|e| self.classify(rbac::LIST_PODS, &e).into_platform(&ns))?;
        let mut out: Vec<crate::platform::Peer> = list
            .items
            .into_iter()
            .filter_map(|p| {
                let status = p.status?;
                let mut addresses: Vec<std::net::IpAddr> = status
                    .pod_ips
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| i.ip.parse().ok())
                    .collect();
                if let Some(ip) = status.pod_ip.and_then(|i| i.parse().ok()) {
                    if !addresses.contains(&ip) {
                        addresses.push(ip);
                    }
                }
                // A pending pod has no address yet: nothing to scope to.
                (!addresses.is_empty()).then(|| crate::platform::Peer {
                    name: format!("{ns}/{}", p.metadata.name.unwrap_or_default()),
                    addresses,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn discover(&self) -> Result<Vec<Target>, PlatformError> {
        let lp = ListParams {
            label_selector: self.spec.selector.clone(),
            field_selector: self.spec.field_selector.clone(),
            ..Default::default()
        };
        let list = self.send(self.pods().list(&lp)).await?.map_err(|e| {
            match self.classify(rbac::LIST_PODS, &e) {
                Failure::NotFound => {
                    PlatformError::Refused(format!("namespace `{}` does not exist", self.ns()))
                }
                other => other.into_platform(self.ns()),
            }
        })?;
        let own = if self.context.is_none() {
            own_pod()
        } else {
            None
        };
        Ok(list
            .items
            .into_iter()
            .filter(eligible)
            .filter(|p| {
                own.as_ref().is_none_or(|(ns, name)| {
                    p.metadata.namespace.as_deref() != Some(ns)
                        || p.metadata.name.as_deref() != Some(name)
                })
            })
            .map(|p| Target {
                platform: "kubernetes".into(),
                id: p.metadata.uid.unwrap_or_default(),
                name: p.metadata.name.unwrap_or_default(),
                labels: p.metadata.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes the pod; its controller decides whether it comes back. Without a grace
    /// period it is a force delete (grace 0): the pod object is removed at once and the
    /// kubelet kills the containers afterwards. With one, the kubelet sends the image's
    /// stop signal, then SIGKILL when the period ends. `signal` cannot be chosen here.
    async fn signal(
        &self,
        target: &Target,
        _signal: Signal,
        grace: Option<Duration>,
    ) -> Result<(), PlatformError> {
        // Rounded up: a grace period is never shortened into a force delete.
        let grace = grace.map(|g| g.as_millis().div_ceil(1000)).unwrap_or(0);
        let grace = u32::try_from(grace).unwrap_or(u32::MAX);
        match self
            .send(self.delete_pod(&target.name, grace, Some(&target.id)))
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => match api::status(&e).map(|s| s.code) {
                // The UID precondition failed: another pod has the name now.
                Some(409) => Err(PlatformError::Gone(target.name.clone())),
                _ => Err(self
                    .classify(rbac::DELETE_PODS, &e)
                    .into_platform(&target.name)),
            },
        }
    }

    async fn freeze(&self, target: &Target, lifetime: StdDuration) -> Result<(), PlatformError> {
        // A pause helper already there (this target frozen) is refused when its create
        // conflicts: no lookup before it.
        let pod = self.target_pod(target).await?;
        let (container, container_id) = self.container_of(&pod, target)?;
        let (node, image) = self.node_and_image(&pod, target, &PAUSE_JOB)?;
        let helper = pause::helper_pod(&pause::Helper {
            namespace: self.ns(),
            node: &node,
            target_uid: &target.id,
            target_name: &target.name,
            container: &container,
            container_id: &container_id,
            image,
            lifetime,
        });
        let name = pause::helper_name(&target.id);
        let busy = format!(
            "pod `{}` already has a pause helper `{name}`, left by an earlier run: run `faultline recover`",
            target.name
        );
        self.create_helper(&helper, &name, busy).await?;
        if let Err(e) = self
            .wait_helper(&PAUSE_JOB, &name, target, &container)
            .await
        {
            if let Err(cleanup) = self.remove_helper(&name).await {
                tracing::warn!("cannot remove the pause helper `{name}`: {cleanup}");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn signal_container(
        &self,
        target: &Target,
        container: &str,
        signal: Signal,
    ) -> Result<i32, PlatformError> {
        let pod = self.target_pod(target).await?;
        let (before, container_id) = container_restarts(&pod, target, container, true)?;
        let (node, image) = self.node_and_image(&pod, target, &KILL_JOB)?;
        let helper = signal::helper_pod(
            &signal::Helper {
                namespace: self.ns(),
                node: &node,
                target_uid: &target.id,
                target_name: &target.name,
                container,
                container_id: &container_id,
                image,
                lifetime: self.timing.start + self.timing.stop,
            },
            signal.0,
        );
        let name = signal::helper_name(&target.id, container);
        let busy = format!(
            "pod `{}` already has a kill helper `{name}` at work, from an earlier run: it ends by itself within {}s",
            target.name,
            (self.timing.start + self.timing.stop).as_secs()
        );
        self.create_helper(&helper, &name, busy).await?;
        let signalled = self.wait_helper(&KILL_JOB, &name, target, container).await;
        if let Err(cleanup) = self.remove_helper(&name).await {
            tracing::warn!("cannot remove the kill helper `{name}`: {cleanup}");
        }
        let said = signalled?;
        tracing::info!("kill helper for `{container}` of `{}`: {said}", target.name);
        Ok(before)
    }

    async fn restart_count(&self, target: &Target, container: &str) -> Result<i32, PlatformError> {
        let pod = self.target_pod(target).await?;
        container_restarts(&pod, target, container, false).map(|(n, _)| n)
    }

    async fn until_gone(
        &self,
        target: &Target,
        timeout: StdDuration,
    ) -> Result<bool, PlatformError> {
        self.wait_gone(std::slice::from_ref(target), timeout)
            .await
            .map(|_| true)
    }

    async fn thaw(&self, target: &Target) -> Result<(), PlatformError> {
        self.remove_helper(&pause::helper_name(&target.id)).await
    }

    async fn is_frozen(&self, target: &Target) -> Result<bool, PlatformError> {
        let name = pause::helper_name(&target.id);
        match self.send(self.pods().get(&name)).await? {
            Ok(helper) => Ok(pod_ready(&helper)),
            Err(e) => match self.classify(rbac::GET_PODS, &e) {
                Failure::NotFound => Ok(false),
                other => Err(other.into_platform(&name)),
            },
        }
    }

    async fn enter_netns(
        &self,
        target: &Target,
        request: &NetnsRequest<'_>,
    ) -> Result<NetAccess, PlatformError> {
        if request.strategy == NetworkStrategy::Host {
            return Err(PlatformError::Refused(
                "strategy `host` is not available on Kubernetes (faultline does not run on the pod's node): use `strategy: sidecar` or `auto`, which add an ephemeral container to the pod".into(),
            ));
        }
        let image = request
            .image
            .map(str::to_string)
            .or_else(|| self.tc_image.clone())
            .ok_or_else(|| {
                PlatformError::Refused(
                    "network faults on Kubernetes need an image with `tc` and `sh` for the ephemeral helper container: set `tc_image` on the fault, --tc-image, or FAULTLINE_TC_IMAGE".into(),
                )
            })?;
        let name = network::helper_name();
        let patch = network::ephemeral_patch(
            &target.id,
            &name,
            &image,
            &request.on_exit,
            request.lifetime,
        );
        self.patch_ephemeral(target, &patch).await?;
        self.wait_ephemeral(
            target,
            &name,
            &image,
            "network helper",
            "`tc`, `sh` and a writable /tmp",
        )
        .await?;
        Ok(NetAccess::Sidecar {
            helper: network::helper_ref(&target.name, &name),
            image,
        })
    }

    fn can_exec(&self) -> bool {
        true
    }

    /// Runs `argv` in the target container (`container`, default the pod's first) over
    /// the exec websocket (`pods/exec`).
    async fn exec(&self, target: &Target, argv: &[String]) -> Result<ExecOutput, PlatformError> {
        let pod = self.target_pod(target).await?;
        let (container, _) = self.container_of(&pod, target)?;
        let what = format!("container `{container}`");
        self.exec_in_target(target, &container, &what, argv).await
    }

    async fn netns_exec(
        &self,
        target: &Target,
        access: &NetAccess,
        argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        let NetAccess::Sidecar { helper, .. } = access else {
            return Err(PlatformError::Refused(
                "host network access is not available on Kubernetes".into(),
            ));
        };
        let (pod, container) = network::parse_helper_ref(helper).ok_or_else(|| {
            PlatformError::Refused(format!("`{helper}` is not a Kubernetes network helper"))
        })?;
        let out = self.exec_in(Some(&target.id), pod, container, argv).await;
        out.map_err(|e| {
            e.of_target(target, |code, reason| {
                if code == 0 {
                    // Its script deletes faultline's qdisc as it ends: nothing is left.
                    tracing::info!(
                        "the network helper `{container}` of pod `{pod}` has ended, and removed faultline's qdisc as it did"
                    );
                    return PlatformError::Gone(target.name.clone());
                }
                PlatformError::Refused(format!(
                    "the network helper `{container}` of pod `{pod}` ended abnormally ({reason}, exit {code}); faultline's qdisc may still be there: check with `kubectl exec`"
                ))
            })
        })
    }

    /// Ephemeral containers of the pod: in its network namespace, with the pod's
    /// `/etc/hosts` and `/etc/resolv.conf`, which the kubelet and the container runtime
    /// mount into every container of the pod, ephemeral ones included.
    fn in_target_from_helper_image(&self) -> bool {
        true
    }

    fn helper_image(&self) -> Option<String> {
        self.tc_image.clone()
    }

    /// An exec into the process's ephemeral container (named by its marker): it sees the
    /// files the process writes (the HTTP proxy's counters).
    async fn process_exec(
        &self,
        target: &Target,
        placement: Placement,
        marker: &str,
        argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        if !matches!(placement, Placement::InTarget { .. }) {
            return Err(PlatformError::Refused(NOT_ON_THE_NODE.into()));
        }
        let what = format!("the faultline process `{marker}`");
        self.exec_in_target(target, marker, &what, argv).await
    }

    async fn start_process(
        &self,
        target: &Target,
        placement: Placement,
        argv: &[String],
        marker: &str,
        _lifetime: StdDuration,
    ) -> Result<(), PlatformError> {
        let (net_admin, image) = match placement {
            Placement::InTarget { net_admin, image } => (net_admin, image),
            Placement::InContainer => {
                // The exec's shell starts the command in the background and ends at once;
                // the command lives on in the container (no terminal: no hangup).
                let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
                let start = format!(
                    "{} >/dev/null 2>&1 </dev/null & echo started",
                    line.join(" ")
                );
                let out = self
                    .exec(target, &["sh".into(), "-c".into(), start])
                    .await?;
                return if out.stdout.trim() == "started" {
                    Ok(())
                } else {
                    Err(PlatformError::Refused(format!(
                        "cannot start `{}` in pod `{}`: {}",
                        argv.first().map_or("", String::as_str),
                        target.name,
                        out.stderr.trim()
                    )))
                };
            }
            Placement::Host { .. } => return Err(PlatformError::Refused(NOT_ON_THE_NODE.into())),
        };
        let (what, needs) = process_words(argv);
        let image = image.or_else(|| self.tc_image.clone()).ok_or_else(|| {
            PlatformError::Refused(format!(
                "the {what} on Kubernetes runs in an ephemeral container: name an image with {needs} with --tc-image or FAULTLINE_TC_IMAGE"
            ))
        })?;
        let patch = network::process_patch(&target.id, marker, &image, argv, net_admin);
        self.patch_ephemeral(target, &patch).await?;
        self.wait_ephemeral(target, marker, &image, what, &needs)
            .await
    }

    /// Stops an in-target process (a stressor, a delayer) and confirms it by its
    /// container's `terminated` state. The process is PID 1 of its ephemeral container:
    /// when the kill script ends it, the kernel ends the exec too, so the exec's output
    /// proves nothing either way. `gentle` sends SIGTERM first (a delayer lets the packets
    /// it holds go).
    async fn stop_process(
        &self,
        target: &Target,
        placement: Placement,
        marker: &str,
        gentle: bool,
    ) -> Result<(), PlatformError> {
        if placement == Placement::InContainer {
            return self.stop_in_container(target, marker).await;
        }
        if !matches!(placement, Placement::InTarget { .. }) {
            return Err(PlatformError::Refused(NOT_ON_THE_NODE.into()));
        }
        // The marker names the kind (`faultline-stress-…`); the platform need not.
        let what = "faultline process";
        let script = if gentle {
            crate::platform::host::term_then_kill_by_marker_script(marker)
        } else {
            crate::platform::host::kill_by_marker_script(marker)
        };
        let argv = vec!["sh".to_string(), "-c".to_string(), script];
        let deadline = tokio::time::Instant::now() + self.timing.stop;
        let mut told = false;
        loop {
            let pod = self.target_pod(target).await?;
            let in_spec = pod
                .spec
                .as_ref()
                .and_then(|s| s.ephemeral_containers.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.name == marker));
            let status = ephemeral_status(&pod, marker);
            if !in_spec && status.is_none() {
                // Never added (its start failed before): nothing burns.
                return Ok(());
            }
            match container_state(status) {
                ContainerState::Ended { code, reason, .. } => {
                    tracing::debug!(
                        "the {what} `{marker}` of pod `{}` has ended ({reason}, exit {code})",
                        target.name
                    );
                    return Ok(());
                }
                ContainerState::Broken { reason, .. } => {
                    tracing::info!(
                        "the {what} `{marker}` of pod `{}` never started ({reason}); if the kubelet ever starts it, its own deadline ends it",
                        target.name
                    );
                    return Ok(());
                }
                ContainerState::Running if !told => {
                    told = true;
                    match self
                        .exec_in(Some(&target.id), &target.name, marker, &argv)
                        .await
                    {
                        Ok(out) => tracing::debug!(
                            "kill script in `{marker}`: exit {}, {:?}",
                            out.code,
                            out.stdout.trim()
                        ),
                        Err(ExecError::PodGone) => {
                            return Err(PlatformError::Gone(target.name.clone()));
                        }
                        Err(ExecError::HelperEnded { .. }) => return Ok(()),
                        // A refusal (403, 401) will not change by waiting.
                        Err(ExecError::Platform(e @ PlatformError::Refused(_))) => return Err(e),
                        // The stream broke as PID 1 ended: the state says how it went.
                        Err(ExecError::Platform(e)) => {
                            tracing::debug!("kill script in `{marker}`: {e}");
                        }
                    }
                    continue;
                }
                // Still starting: it is told once it runs.
                ContainerState::Running | ContainerState::Starting { .. } => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let state = if told {
                    "still runs"
                } else {
                    "has not started, and so cannot be stopped,"
                };
                return Err(PlatformError::Refused(format!(
                    "the {what} container `{marker}` of pod `{}` {state} {}s after it was told to stop: check with `kubectl get pod {} -o jsonpath='{{.status.ephemeralContainerStatuses}}'`",
                    target.name,
                    self.timing.stop.as_secs(),
                    target.name
                )));
            }
            tokio::time::sleep(self.timing.poll).await;
        }
    }

    async fn leave_netns(&self, access: &NetAccess) -> Result<(), PlatformError> {
        let NetAccess::Sidecar { helper, .. } = access else {
            return Ok(());
        };
        let Some((pod, container)) = network::parse_helper_ref(helper) else {
            return Ok(());
        };
        match self
            .exec_in(None, pod, container, &network::stop_command())
            .await
        {
            Ok(out) if out.code != 0 => {
                tracing::debug!("stopping the network helper: {}", out.stderr.trim());
            }
            Ok(_) => {}
            Err(ExecError::PodGone | ExecError::HelperEnded { .. }) => return Ok(()),
            Err(ExecError::Platform(e)) => return Err(e),
        }
        self.wait_net_helper_ended(pod, container).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_round_trip() {
        assert_eq!(endpoint("shop", Some("kind-kind")), "shop@kind-kind");
        assert_eq!(
            parse_endpoint("shop@arn:aws:eks:eu-west-1:1:cluster/a@b"),
            (
                "shop".into(),
                Some("arn:aws:eks:eu-west-1:1:cluster/a@b".into())
            )
        );
        assert_eq!(endpoint("shop", None), "shop");
        assert_eq!(parse_endpoint("shop"), ("shop".into(), None));
    }

    fn pod(phase: &str, labels: serde_json::Value, deleting: bool) -> Pod {
        let mut meta = serde_json::json!({"name": "p", "uid": "u", "labels": labels});
        if deleting {
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({"metadata": meta, "status": {"phase": phase}}))
            .unwrap()
    }

    #[test]
    fn only_running_unprotected_non_helper_pods() {
        assert!(eligible(&pod(
            "Running",
            serde_json::json!({"app": "x"}),
            false
        )));
        assert!(!eligible(&pod("Pending", serde_json::json!({}), false)));
        assert!(!eligible(&pod("Running", serde_json::json!({}), true)));
        assert!(!eligible(&pod(
            "Running",
            serde_json::json!({"faultline.protected": "true"}),
            false
        )));
        assert!(eligible(&pod(
            "Running",
            serde_json::json!({"faultline.protected": "false"}),
            false
        )));
        assert!(!eligible(&pod(
            "Running",
            serde_json::json!({"faultline.helper": "pause"}),
            false
        )));
    }
}
