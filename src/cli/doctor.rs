//! `faultline doctor [FILE]`: runs the library's checks and prints them. Exits 1 when a
//! check fails.

use super::args::DoctorArgs;
use crate::doctor::{self, Check, Level, Wanted};
use crate::error::{Error, Exit};
use crate::experiment::model::Experiment;
use crate::experiment::{self, Loaded};

fn line(c: &Check) -> String {
    let mark = match c.level {
        Level::Ok => "ok  ",
        Level::Warn => "warn",
        Level::Fail => "FAIL",
    };
    let mut s = format!("[{mark}] {}: {}", c.name, c.detail);
    if c.level != Level::Ok && !c.fix.is_empty() {
        s.push_str(&format!("\n       {}", c.fix));
    }
    s
}

fn wanted(a: &DoctorArgs, file: &std::path::Path) -> Result<Wanted, Error> {
    let overrides = a.vars.overrides()?;
    let loaded = experiment::load(file, &overrides).map_err(Error::Invalid)?;
    let experiments: Vec<&Experiment> = match &loaded {
        Loaded::Experiment(e) => vec![&e.experiment],
        Loaded::Scenario(s) => s.experiments.iter().map(|e| &e.experiment).collect(),
    };
    Ok(Wanted::of(&experiments))
}

pub(super) fn run(a: &DoctorArgs) -> Result<Exit, Error> {
    let wanted = a.file.as_deref().map(|f| wanted(a, f)).transpose()?;
    let checks = super::run::runtime().block_on(doctor::checks(wanted.as_ref(), a.file.as_deref()));
    let mut out = match &a.file {
        Some(f) => format!("faultline doctor {}\n", f.display()),
        None => String::from("faultline doctor\n"),
    };
    for c in &checks {
        out.push_str(&line(c));
        out.push('\n');
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    out.push_str(&if failed == 0 {
        match &a.file {
            Some(_) => "Everything this experiment needs works here.\n".to_string(),
            None => "Everything faultline needs works here.\n".to_string(),
        }
    } else {
        format!("{failed} check(s) failed; the faults they disable are named above.\n")
    });
    super::print_stdout(&out);
    Ok(if failed == 0 {
        Exit::Passed
    } else {
        Exit::Failed
    })
}
