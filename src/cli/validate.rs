//! `faultline validate` and the text of `faultline plan`.

use std::fmt::Write as _;

use super::args::{DiagnosticFormat, ValidateArgs};
use super::{print_diagnostics, print_stdout};
use crate::error::{Error, Exit};
use crate::experiment::{self, Loaded, LoadedExperiment};
use crate::plan;

pub fn run(a: &ValidateArgs) -> Result<Exit, Error> {
    let overrides = a.vars.overrides()?;
    let mut problems = Vec::new();
    let mut ok_lines = String::new();
    for file in &a.files {
        match experiment::load(file, &overrides) {
            Ok(Loaded::Experiment(e)) => {
                let x = &e.experiment;
                let _ = writeln!(
                    ok_lines,
                    "{}: valid experiment `{}` ({} fault(s), {} steady-state probe(s), {} during probe(s))",
                    file.display(),
                    x.name,
                    x.faults.len(),
                    x.steady_state.len(),
                    x.during.as_ref().map_or(0, |d| d.probes.len())
                );
            }
            Ok(Loaded::Scenario(s)) => {
                let _ = writeln!(
                    ok_lines,
                    "{}: valid scenario `{}` ({} experiment(s))",
                    file.display(),
                    s.scenario.name,
                    s.experiments.len()
                );
            }
            Err(d) => problems.extend(d),
        }
    }
    match a.format {
        DiagnosticFormat::Json => {
            let mut text = serde_json::to_string_pretty(&problems).expect("diagnostics serialize");
            text.push('\n');
            print_stdout(&text);
        }
        DiagnosticFormat::Text => {
            print_stdout(&ok_lines);
            print_diagnostics(&problems);
        }
    }
    if problems.is_empty() {
        Ok(Exit::Passed)
    } else {
        if matches!(a.format, DiagnosticFormat::Text) {
            eprintln!("faultline: {} problem(s) found", problems.len());
        }
        Ok(Exit::Invalid)
    }
}

/// Stands where the resolved targets go; `plan` and `--dry-run` replace it.
pub const UNRESOLVED: &str = "  (targets not resolved)\n";

/// The plan as text: the target and the timeline. Secrets are redacted.
pub fn render_plan(loaded: &LoadedExperiment, seed: Option<u64>) -> String {
    let e = &loaded.experiment;
    let mut out = String::new();
    let _ = writeln!(out, "Plan for `{}` ({})", e.name, loaded.file.display());
    if let Some(d) = &e.description {
        let _ = writeln!(out, "  {}", d.trim());
    }
    let mut target = e.target.clone();
    if seed.is_some() {
        target.select.seed = seed;
    }
    let _ = writeln!(out, "\nTarget: {}", plan::describe_target(&target));
    out.push_str(UNRESOLVED);
    let _ = writeln!(out, "\nSteps:");
    for (i, s) in plan::steps(e).iter().enumerate() {
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
