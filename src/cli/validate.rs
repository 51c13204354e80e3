//! `faultline validate` and the text of `faultline plan`.

use std::fmt::Write as _;

use super::args::{DiagnosticFormat, ValidateArgs};
use super::{print_diagnostics, print_stdout};
use crate::error::{Error, Exit};
use crate::experiment::{self, Loaded};

/// A warning that `--strict` turns into a problem.
fn as_error(d: &experiment::Diagnostic) -> experiment::Diagnostic {
    let mut d = d.clone();
    if let Some(m) = d.message.strip_prefix("warning: ") {
        d.message = format!("{m} (--strict)");
    }
    d
}

pub(super) fn run(a: &ValidateArgs) -> Result<Exit, Error> {
    let mut overrides = a.vars.overrides()?;
    // A lint step needs no secrets: an unset `${env:...}` is a warning unless --strict.
    overrides.unset_env_is_warning = true;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut ok_lines = String::new();
    for file in &a.files {
        match experiment::load(file, &overrides) {
            Ok(Loaded::Experiment(e)) if a.strict && !e.warnings.is_empty() => {
                problems.extend(e.warnings.iter().map(as_error));
            }
            Ok(Loaded::Scenario(s))
                if a.strict && s.experiments.iter().any(|e| !e.warnings.is_empty()) =>
            {
                for e in &s.experiments {
                    problems.extend(e.warnings.iter().map(as_error));
                }
            }
            Ok(Loaded::Experiment(e)) => {
                warnings.extend(e.warnings.iter().cloned());
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
                for e in &s.experiments {
                    warnings.extend(e.warnings.iter().cloned());
                }
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
            // Warnings first: their messages start with `warning: `; they do not fail.
            let all: Vec<_> = warnings.iter().chain(&problems).collect();
            let mut text = serde_json::to_string_pretty(&all).expect("diagnostics serialize");
            text.push('\n');
            print_stdout(&text);
        }
        DiagnosticFormat::Text => {
            print_stdout(&ok_lines);
            print_diagnostics(&warnings);
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
