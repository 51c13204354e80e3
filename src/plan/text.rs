//! The plan in words, as `faultline plan`, `validate --plan` and `run --dry-run` print it:
//! the targets and the timeline. `run::dry_run` fills in the resolved targets.

use std::fmt::Write as _;

use crate::experiment::LoadedExperiment;

/// Stands where the resolved targets go; `plan` and `--dry-run` replace it.
pub const UNRESOLVED: &str = "  (targets not resolved)\n";

/// The plan as text: the target and the timeline. Secrets are redacted.
pub fn render(loaded: &LoadedExperiment, seed: Option<u64>) -> String {
    let e = &loaded.experiment;
    let mut out = String::new();
    let _ = writeln!(out, "Plan for `{}` ({})", e.name, loaded.file.display());
    if let Some(d) = &e.description {
        let _ = writeln!(out, "  {}", d.trim());
    }
    let named = e.named_targets();
    if named.len() > 1 || named.iter().any(|(n, _)| !n.is_empty()) {
        let _ = writeln!(out, "\nTargets:");
    }
    for (name, t) in named {
        let mut target = t.clone();
        if seed.is_some() {
            target.select.seed = seed;
        }
        match name {
            "" => {
                let _ = writeln!(out, "\nTarget: {}", super::describe_target(&target));
            }
            _ => {
                let _ = writeln!(out, "  {name}: {}", super::describe_target(&target));
            }
        }
    }
    out.push_str(UNRESOLVED);
    let _ = writeln!(out, "\nSteps:");
    for (i, s) in super::steps(e).iter().enumerate() {
        let at = s.at.map(|a| format!("t+{a}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>2}. {:<7} {:<8} {}",
            i + 1,
            s.phase.name(),
            at,
            s.action
        );
    }
    loaded.secrets.redact(&out)
}
