//! Whether each cluster answers, and whether each permission an experiment needs is allowed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Check, Level};
use crate::platform::kubernetes::api::{Failure, classify, shown_cluster};
use crate::platform::kubernetes::rbac::{self, Needs, Permission};

/// Bound on each Kubernetes API call of a check.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Without a file: the current context (or in-cluster), and whether its API server answers.
/// Not having Kubernetes configured at all is no failure.
pub(super) async fn default() -> Vec<Check> {
    let configured = kube::config::Kubeconfig::read().is_ok()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if !configured {
        return vec![Check {
            name: "Kubernetes".into(),
            level: Level::Warn,
            detail: "no kubeconfig and not in a cluster".into(),
            fix: "Kubernetes targets are unavailable: set KUBECONFIG or run in a cluster; `faultline rbac FILE` prints the Role an experiment needs".into(),
        }];
    }
    vec![reachable(None).await.0]
}

/// The API server of `context` (`None`: the current one, or in-cluster) answers `/version`
/// with faultline's credentials. Returns the client when it does.
async fn reachable(context: Option<&str>) -> (Check, Option<Connected>) {
    let fix = "Kubernetes targets in this cluster are unavailable: check the kubeconfig's server and credentials (`kubectl version`)";
    let (client, used) = match crate::platform::kubernetes::client_for(context).await {
        Ok(c) => c,
        Err(e) => return (Check::new("Kubernetes", Err(e), fix), None),
    };
    let cluster = shown_cluster(used.as_deref());
    let name = match &used {
        Some(c) => format!("Kubernetes (context `{c}`)"),
        None => "Kubernetes (in-cluster)".into(),
    };
    match tokio::time::timeout(API_TIMEOUT, client.apiserver_version()).await {
        Err(_) => (Check::new(name, Err(no_answer(&cluster)), fix), None),
        Ok(Err(e)) => {
            let why = match classify(&e, rbac::LIST_PODS, "", &cluster) {
                Failure::NotFound => format!("the Kubernetes API ({cluster}) has no /version"),
                Failure::Refused(m) | Failure::Unavailable(m) => m,
            };
            (Check::new(name, Err(why), fix), None)
        }
        Ok(Ok(v)) => (
            Check::new(
                name,
                Ok(format!("API server {} answers", v.git_version)),
                fix,
            ),
            Some(Connected { client, used }),
        ),
    }
}

fn no_answer(cluster: &str) -> String {
    format!(
        "the Kubernetes API ({cluster}) did not answer within {}s",
        API_TIMEOUT.as_secs()
    )
}

/// A client, and the context it uses (`None`: in-cluster).
#[derive(Clone)]
struct Connected {
    client: kube::Client,
    used: Option<String>,
}

/// With a file: each cluster it uses answers, and each permission it needs is allowed.
pub(super) async fn needs(needs: &Needs, file: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut clients: BTreeMap<Option<String>, Option<Connected>> = BTreeMap::new();
    for (scope, perms) in needs {
        if !clients.contains_key(&scope.context) {
            let (check, client) = reachable(scope.context.as_deref()).await;
            checks.push(check);
            clients.insert(scope.context.clone(), client);
        }
        let Some(Connected { client, used }) = clients.get(&scope.context).cloned().flatten()
        else {
            continue;
        };
        let wanted: Vec<Permission> = perms.keys().copied().collect();
        let name = format!("Kubernetes permissions in namespace `{}`", scope.namespace);
        let fix = format!(
            "grant them: `faultline rbac {}` prints the Role and RoleBinding",
            file.display()
        );
        let reviewed = tokio::time::timeout(
            API_TIMEOUT,
            rbac::review(&client, &scope.namespace, &wanted),
        )
        .await;
        let cluster = shown_cluster(used.as_deref());
        let result = match reviewed {
            Err(_) => Err(no_answer(&cluster)),
            Ok(Err(e)) => Err(classify(&e, rbac::CREATE_SSAR, &scope.namespace, &cluster)
                .message("selfsubjectaccessreviews")),
            Ok(Ok(reviews)) => {
                let missing: Vec<String> = reviews
                    .iter()
                    .filter(|r| !r.allowed)
                    .map(|r| {
                        let p = r.permission;
                        let resource = if p.group.is_empty() {
                            p.resource.to_string()
                        } else {
                            format!("{}.{}", p.resource, p.group)
                        };
                        let why: Vec<&str> = perms[&p].iter().map(String::as_str).collect();
                        format!("`{}` `{resource}` (for {})", p.verb, why.join(", "))
                    })
                    .collect();
                if missing.is_empty() {
                    Ok(format!("all {} allowed ({cluster})", wanted.len()))
                } else {
                    Err(format!(
                        "{} of {} not allowed ({cluster}): {}",
                        missing.len(),
                        wanted.len(),
                        missing.join("; ")
                    ))
                }
            }
        };
        checks.push(Check::new(name, result, fix));
    }
    checks
}
