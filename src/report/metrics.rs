//! Run metrics in the Prometheus text exposition format (version 0.0.4), for
//! node_exporter's textfile collector (`--metrics-file`) and the Pushgateway
//! (`--pushgateway`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{FaultStatus, RunResult, Verdict};

const VERDICTS: [Verdict; 7] = [
    Verdict::Passed,
    Verdict::Failed,
    Verdict::NotSteady,
    Verdict::NoTargets,
    Verdict::Error,
    Verdict::Interrupted,
    Verdict::RevertIncomplete,
];

/// The job every push is grouped under.
pub const JOB: &str = "faultline";

/// One metric family: its name, type, help, and samples (labels, value).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Renders the results, one set of series per experiment (the last result wins when an
/// experiment ran more than once), grouped by metric family as the format requires.
pub fn render(results: &[RunResult]) -> String {
    let mut f = Families::new();
    for r in latest(results) {
        f.add(r);
    }
    let mut out = String::new();
    for f in f.into_vec().iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in &f.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {}", f.name, labels.join(","), number(*value));
        }
    }
    out
}

/// Each experiment's last result, in the order experiments first appear.
fn latest(results: &[RunResult]) -> Vec<&RunResult> {
    let mut latest: Vec<&RunResult> = Vec::new();
    for r in results {
        match latest
            .iter_mut()
            .find(|l| l.experiment.name == r.experiment.name)
        {
            Some(slot) => *slot = r,
            None => latest.push(r),
        }
    }
    latest
}

/// The metric families, in the order they are written.
struct Families {
    verdict: Family,
    exit: Family,
    duration: Family,
    recovery: Family,
    ratio: Family,
    injected: Family,
    reverted: Family,
    timestamp: Family,
}

impl Families {
    fn new() -> Families {
        Families {
            verdict: family(
                "faultline_run_verdict",
                "gauge",
                "1 for the verdict of the experiment's last run, 0 for the other verdicts.",
            ),
            exit: family(
                "faultline_run_exit_code",
                "gauge",
                "Exit code of the experiment's last run (0 passed, 1 failed, 3 not run, 4 error, 5 revert incomplete, 130 interrupted).",
            ),
            duration: family(
                "faultline_run_duration_seconds",
                "gauge",
                "Duration of the experiment's last run.",
            ),
            recovery: family(
                "faultline_run_recovery_seconds",
                "gauge",
                "Time from the last revert until the steady state held again, in the last run.",
            ),
            ratio: family(
                "faultline_probe_success_ratio",
                "gauge",
                "Share of a probe's samples that passed while faults were active, in the last run.",
            ),
            injected: family(
                "faultline_faults_injected_total",
                "counter",
                "Faults injected in the experiment's last run.",
            ),
            reverted: family(
                "faultline_faults_reverted_total",
                "counter",
                "Faults reverted in the experiment's last run.",
            ),
            timestamp: family(
                "faultline_run_timestamp_seconds",
                "gauge",
                "Unix time at which the experiment's last run ended.",
            ),
        }
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.verdict,
            self.exit,
            self.duration,
            self.recovery,
            self.ratio,
            self.injected,
            self.reverted,
            self.timestamp,
        ]
    }

    /// One run's series.
    fn add(&mut self, r: &RunResult) {
        let exp = || vec![("experiment", r.experiment.name.clone())];
        for v in VERDICTS {
            let mut labels = exp();
            labels.push(("verdict", v.as_str().to_string()));
            let value = if v == r.verdict { 1.0 } else { 0.0 };
            self.verdict.samples.push((labels, value));
        }
        self.exit.samples.push((exp(), f64::from(r.exit_code)));
        let seconds = r.duration_ms as f64 / 1000.0;
        self.duration.samples.push((exp(), seconds));
        if let Some(ms) = r.phases.after.as_ref().and_then(|a| a.recovered_after_ms) {
            self.recovery.samples.push((exp(), ms as f64 / 1000.0));
        }
        for p in r.phases.during.iter().flat_map(|d| &d.probes) {
            let mut labels = exp();
            labels.push(("probe", p.name.clone()));
            labels.push(("phase", "during".into()));
            self.ratio.samples.push((labels, p.success_ratio));
        }
        self.fault_counts(r);
        let ended = r.ended_at.timestamp_millis() as f64 / 1000.0;
        self.timestamp.samples.push((exp(), ended));
    }

    /// Faults injected and reverted; with named targets (`targets:`), per target.
    fn fault_counts(&mut self, r: &RunResult) {
        let mut named: Vec<&str> = Vec::new();
        for f in &r.faults {
            if !named.contains(&f.target_name.as_str()) {
                named.push(&f.target_name);
            }
        }
        if named.is_empty() {
            named.push("");
        }
        for name in named {
            let mut labels = vec![("experiment", r.experiment.name.clone())];
            if !name.is_empty() {
                labels.push(("target", name.to_string()));
            }
            let mine = || r.faults.iter().filter(move |f| f.target_name == name);
            let n_injected = mine().filter(|f| f.injected_at.is_some()).count();
            let n_reverted = mine().filter(|f| f.status == FaultStatus::Reverted).count();
            self.injected
                .samples
                .push((labels.clone(), n_injected as f64));
            self.reverted.samples.push((labels, n_reverted as f64));
        }
    }
}

fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        samples: Vec::new(),
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// HELP text escapes `\` and newlines.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

fn number(v: f64) -> String {
    crate::probe::prometheus::num(v)
}

/// Writes `text` to `path` atomically: a temporary file in the same directory (which the
/// textfile collector ignores: it reads `*.prom` only), synced, then renamed over `path`,
/// so a scrape never sees half a file.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the metrics file path names no file",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// How long a push may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces the metrics of group `job="faultline", experiment=NAME` on a Pushgateway
/// (HTTP PUT, so series of an earlier run of the same experiment disappear).
/// Errors never contain the gateway URL, which may carry credentials.
pub async fn push(
    client: &reqwest::Client,
    gateway: &str,
    experiment: &str,
    text: &str,
) -> Result<(), String> {
    let url = push_url(gateway, experiment)?;
    let response = client
        .put(url)
        .timeout(PUSH_TIMEOUT)
        .header(
            reqwest::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(text.to_string())
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                format!(
                    "the Pushgateway did not answer within {}s",
                    PUSH_TIMEOUT.as_secs()
                )
            } else if let Some(io) = crate::causes::find_io_error(&e) {
                format!(
                    "cannot reach the Pushgateway: {}",
                    crate::causes::describe_io(io)
                )
            } else {
                format!(
                    "cannot reach the Pushgateway: {}",
                    crate::causes::error_chain(&e)
                )
            }
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(300).collect();
    Err(format!(
        "the Pushgateway refused the metrics: HTTP {}{}",
        status,
        if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        }
    ))
}

/// `{gateway}/metrics/job/faultline/experiment/{name}`; a name the path cannot carry
/// (one with `/`, or empty) uses the `experiment@base64/...` form.
pub fn push_url(gateway: &str, experiment: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(gateway).map_err(|e| format!("invalid Pushgateway URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("invalid Pushgateway URL: use http:// or https://".into());
    }
    let segment = if experiment.is_empty() || experiment.contains('/') {
        format!("experiment@base64/{}", base64url(experiment.as_bytes()))
    } else {
        format!("experiment/{}", percent_encode(experiment))
    };
    let path = format!(
        "{}/metrics/job/{JOB}/{segment}",
        url.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// RFC 4648 section 5 (URL-safe) base64 with padding; `=` for the empty string, as the
/// Pushgateway documents.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if bytes.is_empty() {
        return "=".into();
    }
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::fixture as fixtures;

    #[test]
    fn renders_every_family_once_with_labels() {
        let mut failed = fixtures::passed();
        failed.verdict = Verdict::Failed;
        failed.exit_code = 1;
        failed.phases.during.as_mut().unwrap().probes[0].name = "say \"hi\"\\\n".into();
        let text = render(&[fixtures::passed(), failed.clone()]);
        // The later run of the same experiment wins.
        assert!(text.contains(
            "faultline_run_verdict{experiment=\"web-survives-pause\",verdict=\"failed\"} 1\n"
        ));
        assert!(text.contains(
            "faultline_run_verdict{experiment=\"web-survives-pause\",verdict=\"passed\"} 0\n"
        ));
        assert!(text.contains("faultline_run_exit_code{experiment=\"web-survives-pause\"} 1\n"));
        assert!(
            text.contains(
                "faultline_run_duration_seconds{experiment=\"web-survives-pause\"} 6.4\n"
            )
        );
        assert!(
            text.contains(
                "faultline_run_recovery_seconds{experiment=\"web-survives-pause\"} 0.037\n"
            )
        );
        assert!(text.contains(
            "faultline_probe_success_ratio{experiment=\"web-survives-pause\",probe=\"say \\\"hi\\\"\\\\\\n\",phase=\"during\"} 0.55\n"
        ), "{text}");
        assert!(
            text.contains("faultline_faults_injected_total{experiment=\"web-survives-pause\"} 1\n")
        );
        assert!(
            text.contains("faultline_faults_reverted_total{experiment=\"web-survives-pause\"} 1\n")
        );
        assert!(text.contains(&format!(
            "faultline_run_timestamp_seconds{{experiment=\"web-survives-pause\"}} {}\n",
            failed.ended_at.timestamp_millis() as f64 / 1000.0
        )));
        for name in [
            "faultline_run_verdict",
            "faultline_run_exit_code",
            "faultline_faults_injected_total",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("faultline_run_verdict{"))
                .count(),
            7
        );
    }

    #[test]
    fn families_without_samples_are_left_out() {
        let mut r = fixtures::passed();
        r.phases.after = None;
        r.phases.during = None;
        let text = render(&[r]);
        assert!(!text.contains("faultline_run_recovery_seconds"));
        assert!(!text.contains("faultline_probe_success_ratio"));
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn grouping_key_paths() {
        let u = push_url("http://127.0.0.1:9091/", "web-pause").unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9091/metrics/job/faultline/experiment/web-pause"
        );
        let u = push_url("http://127.0.0.1:9091/gw", "a b").unwrap();
        assert_eq!(u.path(), "/gw/metrics/job/faultline/experiment/a%20b");
        let u = push_url("http://127.0.0.1:9091", "team/web").unwrap();
        assert_eq!(
            u.path(),
            "/metrics/job/faultline/experiment@base64/dGVhbS93ZWI="
        );
        assert!(push_url("ftp://x", "a").is_err());
        assert_eq!(base64url(b""), "=");
        assert_eq!(base64url(b"f"), "Zg==");
        assert_eq!(base64url(b"fo"), "Zm8=");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8=");
    }

    #[test]
    fn textfile_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faultline.prom");
        write_textfile(&path, "a 1\n").unwrap();
        write_textfile(&path, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("faultline.prom")]);
        assert!(write_textfile(&dir.path().join("missing/x.prom"), "").is_err());
    }
}
