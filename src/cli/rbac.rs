//! `faultline rbac FILE`: the least-privilege Role and RoleBinding that an experiment (or
//! every experiment of a scenario) needs, one pair per namespace it touches. The rules come
//! from the permission list the Kubernetes code itself names at each call.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::args::RbacArgs;
use super::print_stdout;
use crate::error::{Error, Exit};
use crate::experiment::model::Experiment;
use crate::experiment::{self, Loaded};
use crate::platform::kubernetes::rbac::{self, Needs, Scope};

pub(super) fn run(a: &RbacArgs) -> Result<Exit, Error> {
    let overrides = a.vars.overrides()?;
    let loaded = experiment::load(&a.file, &overrides).map_err(Error::Invalid)?;
    let (name, experiments): (String, Vec<&Experiment>) = match &loaded {
        Loaded::Experiment(e) => (e.experiment.name.clone(), vec![&e.experiment]),
        Loaded::Scenario(s) => (
            s.scenario.name.clone(),
            s.experiments.iter().map(|e| &e.experiment).collect(),
        ),
    };
    let file = a.file.display().to_string();
    let mut needs = Needs::new();
    for e in &experiments {
        for (scope, perms) in crate::fault::kubernetes_needs(e) {
            let into = needs.entry(scope).or_default();
            for (perm, why) in perms {
                into.entry(perm).or_default().extend(why);
            }
        }
    }
    if needs.is_empty() {
        return Err(Error::Usage(format!(
            "{file}: nothing in it runs on Kubernetes, so it needs no Kubernetes permissions"
        )));
    }
    let default_ns = experiments
        .iter()
        .flat_map(|e| e.named_targets())
        .find_map(|(_, t)| t.kubernetes.as_ref().map(|k| k.namespace.clone()))
        .or_else(|| needs.keys().next().map(|s| s.namespace.clone()))
        .unwrap_or_default();
    let account = ServiceAccount::parse(&a.service_account, &default_ns).map_err(Error::Usage)?;
    print_stdout(&render(&name, &file, &experiments, &needs, &account));
    Ok(Exit::Passed)
}

/// The subject of the RoleBindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccount {
    /// `NAME` (in `default_ns`) or `NAMESPACE/NAME`.
    pub(super) fn parse(text: &str, default_ns: &str) -> Result<ServiceAccount, String> {
        let (ns, name) = match text.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (default_ns, text),
        };
        let dns = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && !s.starts_with(['-', '.'])
                && !s.ends_with(['-', '.'])
        };
        if !dns(ns) || !dns(name) {
            return Err(format!(
                "invalid service account `{text}`: write NAME or NAMESPACE/NAME in lowercase letters, digits, `-` and `.`"
            ));
        }
        Ok(ServiceAccount {
            namespace: ns.to_string(),
            name: name.to_string(),
        })
    }
}

/// The Role and RoleBinding of every scope, as one YAML stream.
pub(super) fn render(
    name: &str,
    file: &str,
    experiments: &[&Experiment],
    needs: &Needs,
    account: &ServiceAccount,
) -> String {
    let role = format!("faultline-{name}");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Least-privilege RBAC for `{name}` ({file}), from `faultline rbac`."
    );
    let _ = writeln!(
        out,
        "# It binds the service account `{}/{}`; apply it with `kubectl apply -f -`.",
        account.namespace, account.name
    );
    // What each fault asks of the namespace's Pod Security level, said once per fault.
    let notes: BTreeSet<&str> = experiments
        .iter()
        .flat_map(|e| {
            e.faults
                .iter()
                .filter(|f| e.target_of(f).is_some_and(|(_, t)| t.kubernetes.is_some()))
        })
        .filter_map(|f| crate::fault::kind(f).kubernetes_note())
        .collect();
    for note in notes {
        out.push_str(note);
    }
    for (scope, perms) in needs {
        role_and_binding(&mut out, &role, scope, perms, account);
    }
    out
}

fn role_and_binding(
    out: &mut String,
    role: &str,
    scope: &Scope,
    perms: &BTreeMap<rbac::Permission, BTreeSet<String>>,
    account: &ServiceAccount,
) {
    let ns = &scope.namespace;
    out.push_str("---\n");
    if let Some(c) = &scope.context {
        let _ = writeln!(out, "# In the cluster of kubeconfig context `{c}`.");
    }
    let _ = write!(
        out,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {role}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: faultline\nrules:\n"
    );
    // One rule per group and resource, its verbs sorted.
    let mut rules: BTreeMap<(&str, &str), BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for (p, why) in perms {
        let verbs = rules.entry((p.group, p.resource)).or_default();
        verbs
            .entry(p.verb)
            .or_default()
            .extend(why.iter().map(String::as_str));
    }
    for ((group, resource), verbs) in &rules {
        let reasons: Vec<String> = verbs
            .iter()
            .map(|(v, why)| {
                format!(
                    "{v} ({})",
                    why.iter().copied().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let _ = writeln!(out, "  # {}", reasons.join("; "));
        let verbs: Vec<&str> = verbs.keys().copied().collect();
        let _ = write!(
            out,
            "  - apiGroups: [\"{group}\"]\n    resources: [\"{resource}\"]\n    verbs: [{}]\n",
            verbs
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = write!(
        out,
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {role}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: faultline\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n  - kind: ServiceAccount\n    name: {}\n    namespace: {}\n",
        account.name, account.namespace
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts() {
        assert_eq!(
            ServiceAccount::parse("faultline", "shop").unwrap(),
            ServiceAccount {
                namespace: "shop".into(),
                name: "faultline".into()
            }
        );
        assert_eq!(
            ServiceAccount::parse("chaos/runner", "shop").unwrap(),
            ServiceAccount {
                namespace: "chaos".into(),
                name: "runner".into()
            }
        );
        assert!(ServiceAccount::parse("Chaos/x", "shop").is_err());
        assert!(ServiceAccount::parse("a/", "shop").is_err());
    }
}
