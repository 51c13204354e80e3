//! The pod spec shared by the node helpers ([`super::pause`], [`super::signal`]): a
//! short-lived privileged pod on the target's node (hostPID, the node's cgroup tree at
//! `/host/cgroup`), owned by the target pod, running one script. Kubernetes expands
//! `$(VAR)` and `$$` in a container's command: the script goes through
//! [`super::expand::escape_all`], and reaches the shell as written.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::{HELPER_LABEL, expand};

/// The start of a node helper's script, named `$name` in its messages: the container's ID
/// from its environment, the node's cgroup tree, and `fail` (says why through the
/// termination message, and exits 1). CRI-O puts the container's monitor in a sibling
/// cgroup that also names the ID (`crio-conmon-ID.scope`): the scripts never take that one.
macro_rules! script_start {
    ($name:literal) => {
        concat!(
            "id=\"$FAULTLINE_CONTAINER_ID\"\nroot=/host/cgroup\nfail() {\n  echo \"$*\" > /dev/termination-log\n  echo \"",
            $name,
            ": $*\" >&2\n  exit 1\n}\n"
        )
    };
}
pub(crate) use script_start;

/// The container a node helper acts on, and the helper's image and lifetime.
#[derive(Clone, Debug)]
pub struct Helper<'a> {
    pub namespace: &'a str,
    pub node: &'a str,
    pub target_uid: &'a str,
    pub target_name: &'a str,
    pub container: &'a str,
    /// Without the runtime prefix (`containerd://`).
    pub container_id: &'a str,
    pub image: &'a str,
    /// The kubelet ends it after this, whatever happens.
    pub lifetime: Duration,
}

#[cfg(test)]
impl Helper<'static> {
    /// A helper for pod `api-1` of namespace `shop` on `node-2`, for a test to vary.
    pub fn example() -> Self {
        Helper {
            namespace: "shop",
            node: "node-2",
            target_uid: "uid-1",
            target_name: "api-1",
            container: "api",
            container_id: "abc",
            image: "tc:1",
            lifetime: Duration::from_secs(60),
        }
    }
}

/// One node helper pod for [`Helper`].
pub struct NodePod<'a> {
    pub of: &'a Helper<'a>,
    /// `pause`, `kill`: its `faultline.helper` label.
    pub kind: &'static str,
    pub name: String,
    /// The helper's own container: `freezer`, `signaller`.
    pub container_name: &'static str,
    pub script: &'a str,
    /// Its environment besides `FAULTLINE_CONTAINER_ID` and `FAULTLINE_NODE`.
    pub env: (&'static str, String),
    /// `activeDeadlineSeconds`.
    pub deadline_secs: u64,
    pub grace_secs: u64,
    /// Whether it writes to the cgroup tree (the freezer does).
    pub writes_cgroups: bool,
    /// Its readiness probe's shell test, if it reports readiness.
    pub ready_when: Option<&'a str>,
}

impl NodePod<'_> {
    pub fn build(&self) -> Pod {
        let h = self.of;
        let env = serde_json::json!([
            {"name": "FAULTLINE_CONTAINER_ID", "value": h.container_id},
            {"name": self.env.0, "value": self.env.1},
            {"name": "FAULTLINE_NODE", "value": h.node},
        ]);
        let mut container = serde_json::json!({
            "name": self.container_name,
            "image": h.image,
            "imagePullPolicy": "IfNotPresent",
            "command": expand::escape_all(&["sh", "-c", self.script]),
            "env": env,
            "securityContext": {"privileged": true, "runAsUser": 0},
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "100m", "memory": "32Mi"},
            },
            "volumeMounts": [{"name": "cgroup", "mountPath": "/host/cgroup", "readOnly": !self.writes_cgroups}],
        });
        if let Some(check) = self.ready_when {
            container["readinessProbe"] = serde_json::json!({
                "exec": {"command": expand::escape_all(&["sh", "-c", check])},
                "periodSeconds": 1,
                "failureThreshold": 1,
            });
        }
        let spec = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": h.namespace,
                "labels": {
                    HELPER_LABEL: self.kind,
                    "faultline.target": h.target_uid,
                    "app.kubernetes.io/managed-by": "faultline",
                },
                "annotations": {
                    "faultline.target-pod": h.target_name,
                    "faultline.target-container": h.container,
                },
                // Garbage-collected with the target pod. Not blocking its deletion, which
                // would need more rights.
                "ownerReferences": [{
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": h.target_name,
                    "uid": h.target_uid,
                }],
            },
            "spec": {
                "nodeName": h.node,
                "hostPID": true,
                "restartPolicy": "Never",
                "activeDeadlineSeconds": self.deadline_secs,
                "terminationGracePeriodSeconds": self.grace_secs,
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                // Placed by nodeName, so only taints the kubelet enforces matter.
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
                "volumes": [{
                    "name": "cgroup",
                    "hostPath": {"path": "/sys/fs/cgroup", "type": "Directory"},
                }],
            },
        });
        serde_json::from_value(spec).expect("the helper pod spec is a valid Pod")
    }
}
