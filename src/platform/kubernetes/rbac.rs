//! The API permissions faultline's Kubernetes code uses, one constant per kind of call.
//! Every call site names its constant (for the 403 message), and `faultline rbac` derives
//! the least-privilege Role from the same constants, so the two cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};

use crate::experiment::model::{Experiment, Fault, KubernetesProbe, ProbeKind};

/// One RBAC rule: a verb on a resource of an API group (`""` is the core group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
}

const fn core(resource: &'static str, verb: &'static str) -> Permission {
    Permission {
        group: "",
        resource,
        verb,
    }
}

/// Discovery, and the `ready` probe.
pub const LIST_PODS: Permission = core("pods", "list");
/// Reading one pod: the target before a pause, helpers while they start and stop.
pub const GET_PODS: Permission = core("pods", "get");
/// `kill`, and removing the pause helper.
pub const DELETE_PODS: Permission = core("pods", "delete");
/// Starting the pause helper.
pub const CREATE_PODS: Permission = core("pods", "create");
/// Adding the network helper to the target pod.
pub const PATCH_EPHEMERAL: Permission = core("pods/ephemeralcontainers", "patch");
/// Running `tc` in the network helper. Exec over a websocket is a GET: API servers before
/// 1.35 authorize it as `get`, later ones as `create`, so both are granted.
pub const EXEC_CREATE: Permission = core("pods/exec", "create");
pub const EXEC_GET: Permission = core("pods/exec", "get");
/// A fault that runs in the target container itself through exec: the pod read for its
/// container, and exec into it.
pub const EXEC_IN_TARGET: &[Permission] = &[GET_PODS, EXEC_CREATE, EXEC_GET];
/// A fault that works from ephemeral containers of the target pod (the network helper, the
/// nfqueue delayer, the HTTP proxy): the pod read while they start and stop, the patch that
/// adds them, and exec into them.
pub const EPHEMERAL_HELPERS: &[Permission] = &[GET_PODS, PATCH_EPHEMERAL, EXEC_CREATE, EXEC_GET];
/// [`EPHEMERAL_HELPERS`] with peer pods resolved to their IPs through the API (listing
/// pods).
pub const EPHEMERAL_HELPERS_AND_PEERS: &[Permission] =
    &[GET_PODS, LIST_PODS, PATCH_EPHEMERAL, EXEC_CREATE, EXEC_GET];
/// The `available` probe.
pub const GET_DEPLOYMENTS: Permission = Permission {
    group: "apps",
    resource: "deployments",
    verb: "get",
};

/// Asking the API server what the credentials in use may do (`faultline doctor FILE`).
/// Every authenticated user has it (the `system:basic-user` ClusterRole), so `faultline
/// rbac` does not grant it.
pub const CREATE_SSAR: Permission = Permission {
    group: "authorization.k8s.io",
    resource: "selfsubjectaccessreviews",
    verb: "create",
};

/// What the API server answered for one permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub permission: Permission,
    pub allowed: bool,
    /// The authorizer's reason, when it gave one.
    pub reason: String,
}

/// Asks the API server, with one SelfSubjectAccessReview per permission, whether the
/// credentials `client` uses may make each call in `namespace`.
pub async fn review(
    client: &kube::Client,
    namespace: &str,
    perms: &[Permission],
) -> Result<Vec<Review>, kube::Error> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    let mut out = Vec::new();
    for p in perms {
        let (resource, subresource) = match p.resource.split_once('/') {
            Some((r, sub)) => (r, Some(sub.to_string())),
            None => (p.resource, None),
        };
        let ssar = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    group: Some(p.group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource,
                    verb: Some(p.verb.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api.create(&kube::api::PostParams::default(), &ssar).await?;
        let status = answer.status.unwrap_or_default();
        out.push(Review {
            permission: *p,
            allowed: status.allowed,
            reason: status
                .reason
                .or(status.evaluation_error)
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// What resolving the targets needs (also every round of a repeated kill).
pub fn for_targets() -> Vec<Permission> {
    vec![LIST_PODS]
}

/// What one `kubernetes` probe needs, in the probe's namespace: `available` reads the
/// deployment, then lists its pods (its status lags behind them).
pub fn for_probe(probe: &KubernetesProbe) -> Vec<Permission> {
    if probe.deployment.is_some() {
        vec![GET_DEPLOYMENTS, LIST_PODS]
    } else {
        vec![LIST_PODS]
    }
}

/// Where permissions are needed: a namespace, in a kubeconfig context (`None`: the
/// current one, or in-cluster).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    pub context: Option<String>,
    pub namespace: String,
}

/// Each permission needed in a scope, with what needs it (`targets`, a fault's type,
/// `probe `NAME``).
pub type Needs = BTreeMap<Scope, BTreeMap<Permission, BTreeSet<String>>>;

/// Everything an experiment needs, by scope, given what each fault needs (each fault says
/// so itself: `fault::rbac_rules`). Empty when nothing in it is on Kubernetes.
pub fn needs(e: &Experiment, for_fault: impl Fn(&Fault) -> Vec<Permission>) -> Needs {
    let mut out = Needs::new();
    let mut add = |scope: &Scope, perms: Vec<Permission>, why: &str| {
        let set = out.entry(scope.clone()).or_default();
        for p in perms {
            set.entry(p).or_default().insert(why.to_string());
        }
    };
    // The union of what each Kubernetes target needs, with the faults that act on it.
    for (name, t) in e.named_targets() {
        let Some(k) = &t.kubernetes else { continue };
        let scope = Scope {
            context: k.context.clone(),
            namespace: k.namespace.clone(),
        };
        add(&scope, for_targets(), "targets");
        let on_it = |f: &&Fault| e.target_of(f).is_some_and(|(n, _)| n == name);
        for f in e.faults.iter().filter(on_it) {
            add(&scope, for_fault(f), f.type_name());
            // Peer pods of a scope in another namespace are listed there.
            for ns in f
                .peer_scopes()
                .into_iter()
                .filter_map(|s| s.pods.as_ref()?.namespace.clone())
                .filter(|ns| *ns != k.namespace)
            {
                let peers = Scope {
                    context: k.context.clone(),
                    namespace: ns,
                };
                add(&peers, vec![LIST_PODS], &format!("{} peers", f.type_name()));
            }
        }
    }
    let during = e.during.iter().flat_map(|d| d.probes.iter());
    for p in e.steady_state.iter().chain(during) {
        for kind in p.kinds() {
            if let ProbeKind::Kubernetes(k) = kind {
                let scope = Scope {
                    // A probe uses its own context, as the probe code does.
                    context: k.context.clone(),
                    namespace: k.namespace.clone(),
                };
                add(&scope, for_probe(k), &format!("probe `{}`", p.name));
            }
        }
    }
    out
}
