//! The integration examples in examples/ci are checked: their YAML parses, every faultline
//! command they run parses with faultline's own command line, and the files they name exist.

mod support;

use clap::Parser;
use faultline::cli::Cli;
use support::{Skip, root, skip};

/// Every faultline invocation in a text, as argv (with `faultline` as argv[0]).
fn invocations(text: &str) -> Vec<Vec<String>> {
    // Folded YAML (`>`) continues a command over several lines: join them first.
    let joined = text.replace("\n          ", " ");
    joined
        .lines()
        .filter_map(|l| {
            let at = l.find("faultline ")?;
            let before = &l[..at];
            if !(before.ends_with('/')
                || before.trim_end().ends_with("run:")
                || before.trim_end().ends_with('-')
                || before.ends_with('='))
            {
                return None;
            }
            let cmd = &l[at..];
            Some(
                cmd.split_whitespace()
                    .map(|w| w.trim_matches('"').to_string())
                    .collect(),
            )
        })
        .collect()
}

fn check_invocations(file: &str, text: &str) -> usize {
    let calls = invocations(text);
    for argv in &calls {
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{file}: `{}` does not parse: {e}", argv.join(" "));
        }
        for arg in argv
            .iter()
            .filter(|a| a.starts_with("experiments/") || a.starts_with("scenarios/"))
        {
            if !arg.contains('*') {
                assert!(root().join(arg).exists(), "{file}: {arg} does not exist");
            }
        }
    }
    calls.len()
}

#[test]
fn ci_yaml_examples_parse_and_call_faultline_correctly() {
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(root().join("examples/ci").join(file)).unwrap();
        let doc: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(doc.is_object(), "{file}");
        assert!(
            check_invocations(file, &text) >= 2,
            "{file}: no faultline commands found"
        );
    }
}

#[test]
fn systemd_units_are_well_formed() {
    let service =
        std::fs::read_to_string(root().join("examples/ci/faultline-gameday.service")).unwrap();
    let timer =
        std::fs::read_to_string(root().join("examples/ci/faultline-gameday.timer")).unwrap();
    for (name, text, sections) in [
        ("service", &service, &["[Unit]", "[Service]"][..]),
        ("timer", &timer, &["[Unit]", "[Timer]", "[Install]"][..]),
    ] {
        for s in sections {
            assert!(text.contains(s), "{name} lacks {s}");
        }
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        {
            assert!(line.contains('='), "{name}: `{line}` is not key=value");
        }
    }
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let argv: Vec<String> = std::iter::once("faultline".to_string())
        .chain(exec.split_whitespace().skip(1).map(String::from))
        .collect();
    Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("ExecStart does not parse: {e}"));
    let on_calendar = timer
        .lines()
        .find_map(|l| l.strip_prefix("OnCalendar="))
        .unwrap();
    if let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["calendar", on_calendar])
        .output()
    {
        assert!(
            out.status.success(),
            "systemd-analyze rejects `{on_calendar}`"
        );
    } else {
        skip(
            Skip::Missing,
            "systemd-analyze (Debian package `systemd`) is not installed; \
             OnCalendar checked for shape only",
        );
        assert!(on_calendar.split_whitespace().count() >= 2);
    }
}
