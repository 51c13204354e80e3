//! Kubernetes API errors in words a user can act on, and reading pod and container state.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::core::Status;

use super::rbac::Permission;
use crate::platform::PlatformError;

/// Where the API server is, for messages: `context `kind-kind``, or in-cluster.
pub fn shown_cluster(context: Option<&str>) -> String {
    match context {
        Some(c) => format!("context `{c}`"),
        None => "the in-cluster API server".to_string(),
    }
}

/// What went wrong in one API call, classified for the platform's error kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 404 on the object itself: it no longer exists.
    NotFound,
    /// Anything the user must fix (403, 404 on the namespace, 409, 422, ...).
    Refused(String),
    /// Not reached, or a server-side error worth retrying.
    Unavailable(String),
}

impl Failure {
    /// The platform error, with `object` the name a 404 refers to.
    pub fn into_platform(self, object: &str) -> PlatformError {
        match self {
            Failure::NotFound => PlatformError::Gone(object.to_string()),
            Failure::Refused(m) => PlatformError::Refused(m),
            Failure::Unavailable(m) => PlatformError::Unavailable(m),
        }
    }

    pub fn message(&self, object: &str) -> String {
        match self {
            Failure::NotFound => format!("`{object}` not found"),
            Failure::Refused(m) | Failure::Unavailable(m) => m.clone(),
        }
    }
}

/// The API status of an error, if the server answered with one.
pub fn status(e: &kube::Error) -> Option<&Status> {
    match e {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

/// Classifies an error of the call `perm` in `namespace` on `cluster` (see [`shown_cluster`]).
pub fn classify(e: &kube::Error, perm: Permission, namespace: &str, cluster: &str) -> Failure {
    let Some(s) = status(e) else {
        let why = match crate::causes::find_io_error(e) {
            Some(io) => crate::causes::describe_io(io),
            None => crate::causes::error_chain(e),
        };
        return Failure::Unavailable(format!(
            "cannot reach the Kubernetes API ({cluster}): {why}"
        ));
    };
    let msg = s.message.trim();
    match s.code {
        404 if namespace_missing(s) => Failure::Refused(format!(
            "namespace `{namespace}` does not exist ({cluster})"
        )),
        404 => Failure::NotFound,
        403 if msg.contains("PodSecurity") => Failure::Refused(format!(
            "namespace `{namespace}` enforces Pod Security and refused faultline's helper: {msg}. \
             The pause helper is a privileged pod and the network helper needs NET_ADMIN: \
             label the namespace `pod-security.kubernetes.io/enforce=privileged` to allow them"
        )),
        403 => Failure::Refused(forbidden(msg, perm, namespace)),
        401 => Failure::Refused(format!(
            "the Kubernetes API ({cluster}) rejected faultline's credentials: {msg}"
        )),
        409 => Failure::Refused(format!("conflict: {msg}")),
        422 => Failure::Refused(format!(
            "the Kubernetes API refused to {} {}: {msg}",
            perm.verb, perm.resource
        )),
        429 | 500.. => Failure::Unavailable(format!(
            "the Kubernetes API ({cluster}) answered {}: {msg}",
            s.code
        )),
        code => Failure::Refused(format!(
            "the Kubernetes API ({cluster}) answered {code}: {msg}"
        )),
    }
}

/// A 404 about the namespace rather than the object (e.g. creating a pod in it).
fn namespace_missing(s: &Status) -> bool {
    s.details.as_ref().is_some_and(|d| d.kind == "namespaces")
        || s.message.starts_with("namespaces \"")
}

/// `forbidden: cannot `delete` `pods` in namespace `shop` ...`: the verb and resource come
/// from the API server's message when it names them, else from the call.
fn forbidden(msg: &str, perm: Permission, namespace: &str) -> String {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?:User "([^"]+)" )?cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?"#,
        )
        .expect("valid regex")
    });
    let (mut verb, mut resource, mut who) =
        (perm.verb.to_string(), perm.resource.to_string(), None);
    let mut group = perm.group.to_string();
    if let Some(c) = re.captures(msg) {
        who = c.get(1).map(|m| m.as_str().to_string());
        verb = c[2].to_string();
        resource = c[3].to_string();
        group = c.get(4).map(|m| m.as_str().to_string()).unwrap_or_default();
    }
    let resource = if group.is_empty() {
        resource
    } else {
        format!("{resource}.{group}")
    };
    let who = who.map(|w| format!(" as `{w}`")).unwrap_or_default();
    format!(
        "forbidden: cannot `{verb}` `{resource}` in namespace `{namespace}`{who} — grant it (see `faultline rbac FILE`)"
    )
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// The names of the pod's containers (not its ephemeral ones), in the order of its spec.
pub fn container_names(pod: &Pod) -> Vec<&str> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| c.name.as_str())
        .collect()
}

/// The status of the pod's container `name`, once the kubelet reports one.
pub fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find(|c| c.name == name)
}

/// The status of the pod's ephemeral container `name`, once the kubelet reports one.
pub fn ephemeral_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let statuses = pod.status.as_ref()?.ephemeral_container_statuses.as_ref()?;
    statuses.iter().find(|c| c.name == name)
}

/// A container's state, reduced to what faultline acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Not started yet (pulling, creating); `reason` is the kubelet's.
    Starting {
        reason: Option<String>,
    },
    /// Cannot start: a bad image, a refused security context, ...
    Broken {
        reason: String,
        message: String,
    },
    Running,
    Ended {
        code: i32,
        reason: String,
        message: String,
    },
}

/// Waiting reasons that will not resolve by themselves soon.
const BROKEN: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

pub fn container_state(status: Option<&ContainerStatus>) -> ContainerState {
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return ContainerState::Starting { reason: None };
    };
    if state.running.is_some() {
        return ContainerState::Running;
    }
    if let Some(t) = &state.terminated {
        return ContainerState::Ended {
            code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            message: t.message.clone().unwrap_or_default().trim().to_string(),
        };
    }
    let waiting = state.waiting.as_ref();
    let reason = waiting.and_then(|w| w.reason.clone());
    match reason {
        Some(r) if BROKEN.contains(&r.as_str()) => ContainerState::Broken {
            reason: r,
            message: waiting.and_then(|w| w.message.clone()).unwrap_or_default(),
        },
        reason => ContainerState::Starting { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kubernetes::rbac;

    fn api(code: u16, reason: &str, message: &str, kind: &str) -> kube::Error {
        let mut s = Status::failure(message, reason).with_code(code);
        if !kind.is_empty() {
            s = s.with_details(kube::core::response::StatusDetails {
                name: "x".into(),
                group: String::new(),
                kind: kind.into(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn forbidden_names_verb_resource_and_who() {
        let e = api(
            403,
            "Forbidden",
            r#"pods "api-1" is forbidden: User "system:serviceaccount:chaos:faultline" cannot delete resource "pods" in API group "" in the namespace "shop""#,
            "pods",
        );
        assert_eq!(
            classify(&e, rbac::DELETE_PODS, "shop", "context `k`"),
            Failure::Refused(
                "forbidden: cannot `delete` `pods` in namespace `shop` as `system:serviceaccount:chaos:faultline` — grant it (see `faultline rbac FILE`)".into()
            )
        );
        let e = api(403, "Forbidden", "forbidden", "");
        assert_eq!(
            classify(&e, rbac::GET_DEPLOYMENTS, "shop", "c"),
            Failure::Refused(
                "forbidden: cannot `get` `deployments.apps` in namespace `shop` — grant it (see `faultline rbac FILE`)".into()
            )
        );
    }

    #[test]
    fn not_found_tells_the_namespace_from_the_object() {
        let e = api(
            404,
            "NotFound",
            r#"namespaces "shop" not found"#,
            "namespaces",
        );
        assert_eq!(
            classify(&e, rbac::CREATE_PODS, "shop", "context `k`"),
            Failure::Refused("namespace `shop` does not exist (context `k`)".into())
        );
        let e = api(404, "NotFound", r#"pods "api-1" not found"#, "pods");
        assert_eq!(classify(&e, rbac::GET_PODS, "shop", "c"), Failure::NotFound);
    }

    #[test]
    fn server_errors_are_retried_and_invalid_is_refused() {
        let e = api(503, "ServiceUnavailable", "etcd is down", "");
        assert!(matches!(
            classify(&e, rbac::LIST_PODS, "shop", "c"),
            Failure::Unavailable(_)
        ));
        let e = api(
            422,
            "Invalid",
            "spec.ephemeralContainers[0].name: Duplicate value",
            "",
        );
        assert_eq!(
            classify(&e, rbac::PATCH_EPHEMERAL, "shop", "c"),
            Failure::Refused(
                "the Kubernetes API refused to patch pods/ephemeralcontainers: spec.ephemeralContainers[0].name: Duplicate value".into()
            )
        );
    }
}
