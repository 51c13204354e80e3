//! Notifications (`--notify URL`, repeatable): a JSON summary posted to every URL when a
//! run or a game day starts and ends. The payload carries a Slack-compatible `text` line,
//! so a Slack (or Mattermost) incoming webhook URL works as it is.
//!
//! Notifying is best effort: a failure is logged and never changes a verdict or an exit
//! code. Every string in a payload is redacted with the experiment's secrets, and the
//! notification URLs (webhook URLs embed tokens) are never logged.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use crate::experiment::{LoadedExperiment, Secrets};
use crate::report::{RunResult, Verdict};

/// How long one notification may take; the run waits for it at most this long.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    RunStarted,
    RunFinished,
    GamedayStarted,
    GamedayFinished,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "run_started",
            EventKind::RunFinished => "run_finished",
            EventKind::GamedayStarted => "gameday_started",
            EventKind::GamedayFinished => "gameday_finished",
        }
    }
}

/// One experiment's outcome inside a `gameday_finished` notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    pub experiment: String,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub duration_ms: u64,
    pub reason: Option<String>,
}

/// What is posted. Fields that do not apply to an event are `null`, so receivers see
/// one shape; `text` is added when the payload is built (see [`Notification::payload`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    pub event: EventKind,
    pub experiment: Option<String>,
    pub scenario: Option<String>,
    pub verdict: Option<Verdict>,
    pub exit_code: Option<u8>,
    pub duration_ms: Option<u64>,
    pub recovered_after_ms: Option<u64>,
    pub targets: Vec<String>,
    /// How the targets were chosen (as in the JSON report), when a run selected them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::report::Selection>,
    /// Path of the report written for this run or game day, if any.
    pub report: Option<String>,
    /// Why the run ended as it did (the run's `verdict` event).
    pub reason: Option<String>,
    /// The experiment's file.
    pub file: Option<String>,
    /// Game days: how many experiments will run (started) or ran (finished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiments: Option<usize>,
    /// Game days: each experiment's outcome, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<RunSummary>,
    pub host: String,
    #[serde(serialize_with = "millis_utc")]
    pub at: DateTime<Utc>,
    #[serde(skip)]
    secrets: Secrets,
}

impl Notification {
    fn new(event: EventKind) -> Notification {
        Notification {
            event,
            experiment: None,
            scenario: None,
            verdict: None,
            exit_code: None,
            duration_ms: None,
            recovered_after_ms: None,
            targets: Vec::new(),
            selection: None,
            report: None,
            reason: None,
            file: None,
            experiments: None,
            results: Vec::new(),
            host: hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            at: Utc::now(),
            secrets: Secrets::default(),
        }
    }

    pub fn run_started(l: &LoadedExperiment) -> Notification {
        let mut n = Notification::new(EventKind::RunStarted);
        n.experiment = Some(l.experiment.name.clone());
        n.file = Some(l.file.display().to_string());
        n.secrets = l.secrets.clone();
        n
    }

    pub fn run_finished(r: &RunResult, secrets: &Secrets) -> Notification {
        let mut n = Notification::new(EventKind::RunFinished);
        n.experiment = Some(r.experiment.name.clone());
        n.file = Some(r.experiment.file.clone());
        n.verdict = Some(r.verdict);
        n.exit_code = Some(r.exit_code);
        n.duration_ms = Some(r.duration_ms);
        n.recovered_after_ms = r.phases.after.as_ref().and_then(|a| a.recovered_after_ms);
        n.targets = r.targets.iter().map(|t| t.name.clone()).collect();
        n.selection = r.selection.clone();
        n.reason = reason(r);
        n.secrets = secrets.clone();
        n
    }

    pub fn gameday_started(name: &str, n_experiments: usize) -> Notification {
        let mut n = Notification::new(EventKind::GamedayStarted);
        n.scenario = Some(name.to_string());
        n.experiments = Some(n_experiments);
        n
    }

    /// The game day's verdict and exit code are those of its worst run (highest exit code);
    /// both are `null` when no experiment ran.
    pub fn gameday_finished(name: &str, results: &[RunResult]) -> Notification {
        let mut n = Notification::new(EventKind::GamedayFinished);
        n.scenario = Some(name.to_string());
        n.experiments = Some(results.len());
        if let Some(worst) = results.iter().max_by_key(|r| r.verdict.exit()) {
            n.verdict = Some(worst.verdict);
            n.exit_code = Some(worst.exit_code);
        }
        let start = results.iter().map(|r| r.started_at).min();
        let end = results.iter().map(|r| r.ended_at).max();
        if let (Some(s), Some(e)) = (start, end) {
            n.duration_ms = Some((e - s).num_milliseconds().max(0) as u64);
        }
        for t in results.iter().flat_map(|r| &r.targets) {
            if !n.targets.contains(&t.name) {
                n.targets.push(t.name.clone());
            }
        }
        n.results = results
            .iter()
            .map(|r| RunSummary {
                experiment: r.experiment.name.clone(),
                verdict: r.verdict,
                exit_code: r.exit_code,
                duration_ms: r.duration_ms,
                reason: reason(r),
            })
            .collect();
        n
    }

    /// Names the report written for the run or game day.
    pub fn with_report(mut self, path: &std::path::Path) -> Notification {
        self.report = Some(path.display().to_string());
        self
    }

    /// Marks a run notification as part of a game day.
    pub fn in_scenario(mut self, name: &str) -> Notification {
        self.scenario = Some(name.to_string());
        self
    }

    /// Adds values to redact (a game day's notifications: every experiment's secrets).
    pub fn with_secrets(mut self, secrets: &Secrets) -> Notification {
        self.secrets.extend(secrets);
        self
    }

    /// The one-line summary, e.g. "faultline: experiment `web-pause` passed (exit 0) in
    /// 6.40s, recovered after 37ms; targets: web-1".
    pub fn text(&self) -> String {
        let verdict = || match (self.verdict, self.exit_code) {
            (Some(v), Some(code)) => format!("{} (exit {code})", verdict_word(v)),
            _ => "finished; no experiment ran".into(),
        };
        let mut t = match self.event {
            EventKind::RunStarted => format!(
                "faultline: experiment `{}` started on {}",
                self.experiment.as_deref().unwrap_or(""),
                self.host
            ),
            EventKind::RunFinished => format!(
                "faultline: experiment `{}` {}",
                self.experiment.as_deref().unwrap_or(""),
                verdict()
            ),
            EventKind::GamedayStarted => format!(
                "faultline: game day `{}` started on {}: {} experiment(s)",
                self.scenario.as_deref().unwrap_or(""),
                self.host,
                self.experiments.unwrap_or(0)
            ),
            EventKind::GamedayFinished => format!(
                "faultline: game day `{}` {}",
                self.scenario.as_deref().unwrap_or(""),
                verdict()
            ),
        };
        if let Some(ms) = self.duration_ms {
            t.push_str(&format!(" in {}", duration(ms)));
        }
        if self.event == EventKind::RunFinished {
            match (self.verdict, &self.reason, self.recovered_after_ms) {
                (Some(Verdict::Passed), _, Some(ms)) => {
                    t.push_str(&format!(", recovered after {}", duration(ms)));
                }
                (Some(Verdict::Passed), _, None) => {}
                (_, Some(reason), _) => t.push_str(&format!(": {reason}")),
                _ => {}
            }
        }
        if self.event == EventKind::RunStarted {
            if let Some(s) = &self.scenario {
                t.push_str(&format!(" (game day `{s}`)"));
            }
        }
        if self.event == EventKind::GamedayFinished && !self.results.is_empty() {
            let passed = self
                .results
                .iter()
                .filter(|r| r.verdict == Verdict::Passed)
                .count();
            let others: Vec<String> = self
                .results
                .iter()
                .filter(|r| r.verdict != Verdict::Passed)
                .map(|r| format!("`{}` {}", r.experiment, verdict_word(r.verdict)))
                .collect();
            t.push_str(&format!("; {passed}/{} passed", self.results.len()));
            if !others.is_empty() {
                t.push_str(&format!(" ({})", others.join(", ")));
            }
        }
        if !self.targets.is_empty() && self.event != EventKind::RunStarted {
            t.push_str(&format!("; targets: {}", self.targets.join(", ")));
            if let Some(short) = self
                .selection
                .as_ref()
                .and_then(super::report::Selection::shortfall)
            {
                t.push_str(&format!(" ({short})"));
            }
        }
        if let Some(r) = &self.report {
            t.push_str(&format!("; report: {r}"));
        }
        // One line; Slack's control characters escaped as its API asks.
        t.replace(['\r', '\n'], " ")
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    /// The JSON body: every field plus `text`, every string redacted.
    pub fn payload(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("text".into(), Value::String(self.text()));
        }
        redact(&mut v, &self.secrets);
        v
    }
}

fn redact(v: &mut Value, secrets: &Secrets) {
    match v {
        Value::String(s) => *s = secrets.redact(s),
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, secrets)),
        Value::Object(map) => map.values_mut().for_each(|i| redact(i, secrets)),
        _ => {}
    }
}

/// The message of the run's `verdict` event.
fn reason(r: &RunResult) -> Option<String> {
    r.events
        .iter()
        .rev()
        .find(|e| e.kind == crate::report::EventKind::Verdict)
        .map(|e| e.message.clone())
}

fn verdict_word(v: Verdict) -> String {
    match v {
        Verdict::Passed => "passed".into(),
        other => other.as_str().replace('_', " ").to_uppercase(),
    }
}

fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn millis_utc<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// An HTTP client for notifications and pushes: rustls, no redirects (a redirect would
/// carry the payload elsewhere).
pub fn client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Posts notifications to every `--notify` URL.
#[derive(Clone, Debug)]
pub struct Notifier {
    urls: Vec<reqwest::Url>,
    /// `None` only when there is no URL.
    client: Option<reqwest::Client>,
}

impl Notifier {
    /// Checks every URL up front (http or https), so a typo is a usage error before
    /// anything runs. Errors name the URL by position only: it may embed a token.
    pub fn new(urls: &[String], client: reqwest::Client) -> Result<Notifier, String> {
        let mut parsed = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            let url = reqwest::Url::parse(u)
                .map_err(|e| format!("--notify URL #{} is not a valid URL: {e}", i + 1))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "--notify URL #{} must be an http:// or https:// URL",
                    i + 1
                ));
            }
            parsed.push(url);
        }
        Ok(Notifier {
            urls: parsed,
            client: Some(client),
        })
    }

    /// No URL, so no HTTP client (whose system certificates would cost a short run's
    /// start-up for nothing).
    pub fn none() -> Notifier {
        Notifier {
            urls: Vec::new(),
            client: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Posts to every URL at once and returns when all have answered or timed out
    /// (at most [`TIMEOUT`]). Failures are logged, never returned.
    pub async fn send(&self, n: &Notification) {
        let Some(client) = &self.client else {
            return;
        };
        let body = n.payload();
        join_all(self.urls.iter().map(|url| async {
            let sent = tokio::time::timeout(
                TIMEOUT,
                client.post(url.clone()).timeout(TIMEOUT).json(&body).send(),
            )
            .await;
            let problem = match sent {
                Err(_) => format!("no answer within {}s", TIMEOUT.as_secs()),
                Ok(Err(e)) if e.is_timeout() => format!("no answer within {}s", TIMEOUT.as_secs()),
                Ok(Err(e)) => describe(e),
                Ok(Ok(r)) if r.status().is_success() => return,
                Ok(Ok(r)) => format!("the receiver answered HTTP {}", r.status()),
            };
            tracing::warn!(
                "notification `{}` to {} failed: {problem}",
                n.event.as_str(),
                where_to(url)
            );
        }))
        .await;
    }
}

/// Scheme, host and port only: paths and queries of webhook URLs carry tokens.
fn where_to(url: &reqwest::Url) -> String {
    match url.port() {
        Some(p) => format!("{}://{}:{p}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    match crate::causes::find_io_error(&err) {
        Some(io) => crate::causes::describe_io(io),
        None => crate::causes::error_chain(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{VarOverrides, load_experiment_str};
    use crate::report::summary::fixture;

    fn secrets(values: &[&str]) -> Secrets {
        let mut s = Secrets::default();
        values.iter().for_each(|v| s.add(v));
        s
    }

    #[test]
    fn a_short_selection_is_in_the_notification() {
        let r = fixture::short_of_targets();
        let p = Notification::run_finished(&r, &Secrets::default()).payload();
        assert_eq!(p["selection"]["requested"], 5);
        let text = p["text"].as_str().unwrap();
        assert!(text.contains("targets: web-1 (1 of 5 requested)"), "{text}");
    }

    #[test]
    fn run_finished_payload_and_text() {
        let r = fixture::passed();
        let n = Notification::run_finished(&r, &Secrets::default())
            .with_report(std::path::Path::new("out/result.json"));
        let p = n.payload();
        assert_eq!(p["event"], "run_finished");
        assert_eq!(p["experiment"], "web-survives-pause");
        assert_eq!(p["scenario"], Value::Null);
        assert_eq!(p["verdict"], "passed");
        assert_eq!(p["exit_code"], 0);
        assert_eq!(p["duration_ms"], 6400);
        assert_eq!(p["recovered_after_ms"], 37);
        assert_eq!(p["targets"], serde_json::json!(["web-1"]));
        assert_eq!(p["report"], "out/result.json");
        assert!(p["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            p["text"],
            "faultline: experiment `web-survives-pause` passed (exit 0) in 6.40s, recovered after 37ms; targets: web-1; report: out/result.json"
        );
    }

    #[test]
    fn failing_run_says_why_and_escapes_for_slack() {
        let mut r = fixture::ended(Verdict::Failed);
        r.events.last_mut().unwrap().message =
            "during probe `web` kept 40% < 50% with token hunter2x".into();
        let p = Notification::run_finished(&r, &secrets(&["hunter2x"])).payload();
        assert_eq!(p["verdict"], "failed");
        assert_eq!(
            p["reason"],
            "during probe `web` kept 40% < 50% with token ***"
        );
        assert_eq!(
            p["text"],
            "faultline: experiment `web-survives-pause` FAILED (exit 1) in 6.40s: during probe `web` kept 40% &lt; 50% with token ***; targets: web-1"
        );
        assert!(!p.to_string().contains("hunter2x"));
    }

    #[test]
    fn run_started_redacts_every_string() {
        let yaml = "version: 1
name: web-pause
target: {docker: {labels: {app: web}}}
steady_state:
  - name: up
    http: {url: \"http://127.0.0.1:1/${env:TOKEN}\"}
faults: [{pause: {duration: 1s}}]
";
        let env = |k: &str| (k == "TOKEN").then(|| "tok-secret-1".to_string());
        let l = load_experiment_str(
            "exp/tok-secret-1.yaml",
            yaml,
            &VarOverrides::default(),
            &env,
        )
        .unwrap();
        let p = Notification::run_started(&l)
            .in_scenario("nightly")
            .payload();
        assert_eq!(p["event"], "run_started");
        assert_eq!(p["file"], "exp/***.yaml");
        assert_eq!(p["verdict"], Value::Null);
        assert!(
            p["text"]
                .as_str()
                .unwrap()
                .starts_with("faultline: experiment `web-pause` started on ")
        );
        assert!(
            p["text"]
                .as_str()
                .unwrap()
                .ends_with(" (game day `nightly`)")
        );
        assert!(!p.to_string().contains("tok-secret-1"));
    }

    #[test]
    fn gameday_payloads() {
        let p = Notification::gameday_started("nightly", 3).payload();
        assert_eq!(p["event"], "gameday_started");
        assert_eq!(p["scenario"], "nightly");
        assert_eq!(p["experiments"], 3);
        assert!(p["text"].as_str().unwrap().ends_with(": 3 experiment(s)"));

        let ok = fixture::passed();
        let mut bad = fixture::ended(Verdict::NotSteady);
        bad.experiment.name = "db-kill".into();
        let p = Notification::gameday_finished("nightly", &[ok, bad]).payload();
        assert_eq!(p["verdict"], "not_steady");
        assert_eq!(p["exit_code"], 3);
        assert_eq!(p["results"].as_array().unwrap().len(), 2);
        assert_eq!(p["results"][1]["experiment"], "db-kill");
        assert_eq!(
            p["text"],
            "faultline: game day `nightly` NOT STEADY (exit 3) in 6.40s; 1/2 passed (`db-kill` NOT STEADY); targets: web-1"
        );
        let p = Notification::gameday_finished("nightly", &[]).payload();
        assert_eq!(p["verdict"], Value::Null);
        assert_eq!(
            p["text"],
            "faultline: game day `nightly` finished; no experiment ran"
        );
    }

    #[test]
    fn urls_are_checked_without_echoing_them() {
        let c = client().unwrap();
        let e = Notifier::new(&["hooks.example/T0K3N".into()], c.clone()).unwrap_err();
        assert!(e.starts_with("--notify URL #1 is not a valid URL"), "{e}");
        assert!(!e.contains("T0K3N"));
        let e = Notifier::new(
            &["http://127.0.0.1:1/".into(), "ftp://x/".into()],
            c.clone(),
        )
        .unwrap_err();
        assert_eq!(e, "--notify URL #2 must be an http:// or https:// URL");
        assert!(Notifier::new(&[], c).unwrap().is_empty());
    }
}
