//! A run that touches nothing (`faultline plan`, `run --dry-run`): the plan in words with
//! the targets resolved on the platform, and how each fault would reach them.

use super::session::{Resolution, resolve_all};
use crate::error::{Error, Exit};
use crate::experiment::{self, LoadedExperiment};
use crate::plan::describe_target;
use crate::plan::text::{UNRESOLVED, render};
use crate::platform::Platform;
use crate::report;

/// What `faultline plan` prints, and the exit code a run would start with: 3 when too few
/// targets match, 4 (`Error`) when the platform cannot be reached. Without a platform the
/// plan still helps: it says why and shows the steps.
pub async fn plan(l: &LoadedExperiment, seed: Option<u64>) -> (String, Exit) {
    let unresolved = |e: &dyn std::fmt::Display| {
        render(l, seed).replace(UNRESOLVED, &format!("  targets not resolved: {e}\n"))
    };
    match super::session::connect_all(&l.experiment, &Default::default()).await {
        Ok(p) => match resolved(l, &p, seed).await {
            Ok(r) => r,
            Err(e) => (unresolved(&e), Exit::Error),
        },
        Err(e) => (unresolved(&e), Exit::Error),
    }
}

/// What a run would do to which target, with the real targets resolved; touches nothing.
/// The exit code is the one the run would start with: 3 when too few targets match.
pub async fn resolved(
    l: &LoadedExperiment,
    platforms: &[Box<dyn Platform>],
    seed: Option<u64>,
) -> Result<(String, Exit), Error> {
    let platforms: Vec<&dyn Platform> = platforms.iter().map(AsRef::as_ref).collect();
    let resolved = resolve_all(&platforms, &l.experiment, seed)
        .await
        .map_err(|e| Error::Platform(e.to_string()))?;
    let mut out = render(l, resolved.first().map(|r| r.seed));
    let mut exit = Exit::Passed;
    let mut targets = String::new();
    let named = l.experiment.named_targets();
    for (((name, t), platform), r) in named.into_iter().zip(platforms).zip(resolved) {
        let (text, code) = resolved_target(l, name, t, platform, r).await;
        targets.push_str(&text);
        exit = exit.max(code);
    }
    targets.push_str("Nothing was touched.\n");
    out = out.replace(UNRESOLVED, &targets);
    Ok((l.secrets.redact(&out), exit))
}

/// The plan's lines about one named target (`name` empty for the unnamed `target`):
/// what was resolved, and how each of its faults would reach it.
async fn resolved_target(
    l: &LoadedExperiment,
    name: &str,
    t: &experiment::model::Target,
    platform: &dyn Platform,
    r: Resolution,
) -> (String, Exit) {
    let Resolution {
        targets: chosen,
        seed,
        candidates: n,
        passed_over,
    } = r;
    let who = if name.is_empty() {
        String::new()
    } else {
        format!("Target `{name}`: ")
    };
    let counts = report::Selection::of(&t.select, n, chosen.len()).passing_over(passed_over);
    let what = describe_target(t);
    if let Some(why) = counts.too_few(&what) {
        let s = format!(
            "{who}On {} ({n} candidates): {why}: the run would stop with `no_targets` (exit 3).\n",
            platform.endpoint(),
        );
        return (s, Exit::NotRun);
    }
    let short = counts
        .shortfall()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let mut s = format!(
        "{who}Resolved on {} with seed {seed}: {} of {n} matching target(s){short}:\n",
        platform.endpoint(),
        chosen.len()
    );
    for t in &chosen {
        s.push_str(&format!(
            "  - {} ({})\n",
            t.name,
            &t.id[..t.id.len().min(12)]
        ));
    }
    let e = &l.experiment;
    let mine: Vec<(usize, &experiment::model::Fault)> = e
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| e.target_of(f).is_some_and(|(n, _)| n == name))
        .collect();
    for (i, f) in &mine {
        for note in crate::fault::kind(f).plan_notes(platform, &chosen).await {
            s.push_str(&format!("  fault {}: {note}\n", i + 1));
        }
    }
    if let Some(why) = platform.endpoint_source() {
        s.push_str(&format!("Endpoint: {} {why}\n", platform.endpoint()));
        if let Some(t) = chosen.first() {
            let reach = platform.host_reach(t).await;
            if let Err(why) = &reach {
                s.push_str(&format!("From this host: no ({why}).\n"));
            }
            s.push_str("How each fault reaches the targets:\n");
            for (i, f) in &mine {
                if let Some(how) = docker_strategy(f, &reach) {
                    s.push_str(&format!("  fault {} ({}): {how}\n", i + 1, f.type_name()));
                }
            }
        }
    }
    (s, Exit::Passed)
}

/// How a fault reaches a Docker target, given whether this host reaches its namespaces and
/// cgroups (`reach`): what `strategy: auto` picks, or that an explicit `host` would be
/// refused. `None` for faults that do not act on the target this way.
fn docker_strategy(f: &experiment::model::Fault, reach: &Result<(), String>) -> Option<String> {
    use crate::experiment::model::{CpuStrategy, Fault, NetworkStrategy};
    let here = reach.is_ok();
    let refused = || {
        "strategy `host`, which would be refused: the targets' namespaces and cgroups are not on this host".to_string()
    };
    let cpu_like = |strategy: CpuStrategy| -> String {
        match (strategy, here) {
            (CpuStrategy::Host, false) => refused(),
            (CpuStrategy::Host, true) | (CpuStrategy::Auto, true) => {
                "host (faultline's own process in the container's cgroups)".into()
            }
            (CpuStrategy::Exec, _) | (CpuStrategy::Auto, false) => {
                "exec (inside the container, through the Docker API)".into()
            }
        }
    };
    Some(match f {
        Fault::Network(n) => match (n.strategy, here) {
            (NetworkStrategy::Host, false) => refused(),
            (NetworkStrategy::Host, true) | (NetworkStrategy::Auto, true) => {
                "host (setns and this host's tc)".into()
            }
            (NetworkStrategy::Sidecar, _) | (NetworkStrategy::Auto, false) => {
                "sidecar (a helper container sharing the target's network namespace)".into()
            }
        },
        Fault::CpuStress(c) => cpu_like(c.strategy),
        Fault::MemoryStress(m) => cpu_like(m.strategy),
        Fault::DiskFill(d) => cpu_like(d.strategy),
        Fault::IoStress(io) => cpu_like(io.strategy),
        Fault::ProcessPause(_) => {
            if here {
                "the matching processes, found through the container's cgroups and stopped from this host".into()
            } else {
                "the matching processes, found through /proc inside the container and stopped by exec".into()
            }
        }
        Fault::Kill(k) if k.process.is_some() => {
            if here {
                "the matching processes, found through the container's cgroups".into()
            } else {
                "the matching processes, found through /proc inside the container by exec".into()
            }
        }
        Fault::Kill(_) => {
            if here {
                "a signal to the container's init process (the restart policy applies)".into()
            } else {
                "through the Docker API, which takes it for a manual stop: the restart policy does not restart the container".into()
            }
        }
        Fault::Pause(_) => "the Docker API's pause (the cgroup freezer)".into(),
        Fault::Stop(_) | Fault::Restart(_) => "the Docker API".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::docker_strategy;
    use crate::test_support::experiment;

    /// `plan` names how each fault reaches a Docker target from this host or not.
    #[test]
    fn each_strategy_follows_whether_this_host_reaches_the_target() {
        let e = experiment(
            "version: 1\nname: t\ntarget: {docker: {name: web}}\nfaults:\n  - process_pause: {process: httpd, duration: 2s}\n  - kill: {}\n  - cpu_stress: {duration: 2s}\n  - command: {run: [\"true\"]}\n",
        );
        let how = |i: usize, here: bool| {
            let reach = if here {
                Ok(())
            } else {
                Err("remote".to_string())
            };
            docker_strategy(&e.faults[i], &reach)
        };
        assert!(how(0, true).unwrap().contains("stopped from this host"));
        assert!(how(0, false).unwrap().contains("stopped by exec"));
        assert!(how(1, true).unwrap().contains("the restart policy applies"));
        assert!(how(1, false).unwrap().contains("does not restart"));
        assert!(how(2, true).unwrap().starts_with("host"));
        assert!(how(2, false).unwrap().starts_with("exec"));
        assert_eq!(how(3, true), None);
    }
}
