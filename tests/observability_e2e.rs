//! End to end against real servers: Debian's `prometheus` and `prometheus-pushgateway`,
//! started on free loopback ports with configs written here, and a notification receiver
//! served by the test. A missing binary is a recorded skip (`scripts/test.sh` lists it; under
//! `CI=true` it fails the test).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline::experiment::{LoadedExperiment, Secrets, VarOverrides, load_experiment_str};
use faultline::notify::{Notification, Notifier};
use faultline::probe::{ProbeContext, Sample};
use faultline::report::{RunResult, metrics};
use serde_json::{Value, json};
use support::free_port;
use tokio::net::TcpListener;

use support::{Experiment, Probe, Received, Receiver, Run};

const TOKEN: &str = "obs-bearer-7f3e9a";

fn need(name: &str, package: &str) -> Option<PathBuf> {
    support::require_program(name, package, "this end-to-end test did not run")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    faultline::notify::client().unwrap()
}

/// A server process, killed and reaped on drop (also when the test panics).
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` plus the route prefix, if any.
    base: String,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `/-/ready`; panics with the server's log if it exits or never gets ready.
    async fn wait_ready(&mut self) {
        let c = client();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}):\n{}", self.log_text());
            }
            let ready = c
                .get(format!("{}/-/ready", self.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never became ready:\n{}", self.log_text());
    }
}

/// Starts Prometheus scraping itself every second, plus `jobs` (name, port; with
/// honor_labels, as a Pushgateway needs), under `prefix` (e.g. "/prom") if given.
/// Returns once it has scraped itself at least once.
async fn prometheus(bin: &Path, jobs: &[(&str, u16)], prefix: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = prefix.unwrap_or("");
    let mut config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: prometheus
    metrics_path: {}/metrics
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
",
        prefix
    );
    for (job, p) in jobs {
        config.push_str(&format!(
            "  - job_name: {job}
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{p}']}}]
"
        ));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.path().join("prometheus.log");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    if !prefix.is_empty() {
        cmd.arg(format!(
            "--web.external-url=http://127.0.0.1:{port}{prefix}"
        ))
        .arg(format!("--web.route-prefix={prefix}"));
    }
    let mut server = spawn(
        cmd,
        &log,
        dir,
        port,
        format!("http://127.0.0.1:{port}{prefix}"),
    );
    server.wait_ready().await;
    let base = server.base.clone();
    let up = wait_for(&base, "up{job=\"prometheus\"}", Duration::from_secs(20)).await;
    assert!(
        up.is_some(),
        "Prometheus never scraped itself:\n{}",
        server.log_text()
    );
    server
}

async fn pushgateway(bin: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("pushgateway.log");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let mut server = spawn(cmd, &log, dir, port, format!("http://127.0.0.1:{port}"));
    server.wait_ready().await;
    server
}

fn spawn(mut cmd: Command, log: &Path, dir: tempfile::TempDir, port: u16, base: String) -> Server {
    let out = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Server {
        child,
        base,
        port,
        log: log.to_path_buf(),
        _dir: dir,
    }
}

/// The instant vector of `query`, as (labels, value) pairs.
async fn query(base: &str, q: &str) -> Vec<(Value, String)> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/query")).unwrap();
    url.query_pairs_mut().append_pair("query", q);
    let Ok(r) = client()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
    else {
        return Vec::new();
    };
    let j: Value = r.json().await.unwrap_or(Value::Null);
    j["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let v = s["value"][1].as_str().unwrap_or("").to_string();
                    (s["metric"].clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `query` until it returns at least one sample.
async fn wait_for(base: &str, q: &str, timeout: Duration) -> Option<Vec<(Value, String)>> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let r = query(base, q).await;
        if !r.is_empty() {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// An experiment whose steady state is the given prometheus probes (name, body), loaded
/// the way `faultline run` loads it, with `${env:PROM_TOKEN}` set to [`TOKEN`].
fn experiment(url: &str, probes: &[(&str, &str)]) -> LoadedExperiment {
    let yaml = probes
        .iter()
        .fold(
            Experiment::new("obs-probe").vars(&format!("{{prom: \"{url}\"}}")),
            |e, (name, body)| e.steady(Probe::flow("prometheus", body).named(name)),
        )
        .on_label("app", "none")
        .fault("pause: {duration: 1s}")
        .yaml();
    let env = |k: &str| (k == "PROM_TOKEN").then(|| TOKEN.to_string());
    load_experiment_str("obs.yaml", &yaml, &VarOverrides::default(), &env)
        .unwrap_or_else(|d| panic!("{d:?}\n{yaml}"))
}

async fn sample_all(l: &LoadedExperiment) -> Vec<(String, Sample)> {
    let ctx = ProbeContext::new().unwrap();
    let mut out = Vec::new();
    for p in &l.experiment.steady_state {
        let s = faultline::probe::sample(p, &ctx).await;
        assert!(!s.detail.contains(TOKEN), "{s:?}");
        out.push((p.name.clone(), s));
    }
    out
}

#[tokio::test]
async fn probe_passes_fails_and_explains_against_a_real_prometheus() {
    let Some(bin) = need("prometheus", "prometheus") else {
        return;
    };
    let prom = prometheus(&bin, &[], None).await;
    let auth = "headers: {Authorization: \"Bearer ${env:PROM_TOKEN}\"}";
    let probes = [
        (
            "within",
            format!("{{url: \"${{prom}}\", query: 'up{{job=\"prometheus\"}}', min: 1, max: 1, {auth}}}"),
        ),
        ("scalar", "{url: \"${prom}\", query: '2 * 21', max: 42}".into()),
        (
            "above",
            "{url: \"${prom}\", query: 'up{job=\"prometheus\"}', max: 0.5}".into(),
        ),
        (
            "below",
            "{url: \"${prom}\", query: 'up{job=\"prometheus\"}', min: 2}".into(),
        ),
        (
            "empty",
            "{url: \"${prom}\", query: 'up{job=\"no-such-job\"}', min: 1}".into(),
        ),
        (
            "several",
            "{url: \"${prom}\", query: 'up or vector(2) or label_replace(vector(3), \"x\", \"y\", \"\", \"\")', min: 1}".into(),
        ),
        ("nan", "{url: \"${prom}\", query: '0/0', min: 0}".into()),
        ("bad-query", "{url: \"${prom}\", query: 'sum(up', min: 0}".into()),
        (
            "wrong-path",
            "{url: \"${prom}/nope\", query: 'up', min: 0}".into(),
        ),
    ];
    let probes: Vec<(&str, &str)> = probes.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let l = experiment(&prom.base, &probes);
    let got = sample_all(&l).await;
    let by = |name: &str| got.iter().find(|(n, _)| n == name).unwrap().1.clone();

    let s = by("within");
    assert!(s.ok && s.value == Some(1.0), "{s:?}");
    assert!(s.detail.starts_with("value 1 within 1..1 in "), "{s:?}");
    let s = by("scalar");
    assert!(s.ok, "{s:?}");
    assert_eq!(s.value, Some(42.0));

    let s = by("above");
    assert_eq!(
        (s.ok, s.detail.as_str()),
        (false, "value 1 is above max 0.5")
    );
    assert_eq!(s.value, Some(1.0));
    assert_eq!(by("below").detail, "value 1 is below min 2");

    let s = by("empty");
    assert_eq!(
        (s.ok, s.detail.as_str()),
        (false, "query returned no sample")
    );
    assert_eq!(s.value, None);
    assert_eq!(
        by("several").detail,
        "query returned 3 samples; aggregate it to one, e.g. sum(...)"
    );
    let s = by("nan");
    assert!(!s.ok && s.detail.starts_with("query returned NaN"), "{s:?}");
    let s = by("bad-query");
    assert!(!s.ok);
    assert!(
        s.detail.starts_with("Prometheus API error (bad_data): "),
        "{}",
        s.detail
    );
    let s = by("wrong-path");
    assert!(
        !s.ok && s.detail.starts_with("HTTP 404 Not Found from Prometheus"),
        "{s:?}"
    );
}

#[tokio::test]
async fn probe_with_a_path_prefix() {
    let Some(bin) = need("prometheus", "prometheus") else {
        return;
    };
    let prom = prometheus(&bin, &[], Some("/prom")).await;
    let root = format!("http://127.0.0.1:{}", prom.port);
    let l = experiment(
        &prom.base,
        &[
            (
                "prefixed",
                "{url: \"${prom}/\", query: 'up', min: 1, max: 1}",
            ),
            (
                "no-prefix",
                &format!("{{url: \"{root}\", query: 'up', min: 1, max: 1}}"),
            ),
        ],
    );
    let got = sample_all(&l).await;
    assert!(got[0].1.ok, "{:?}", got[0]);
    assert!(!got[1].1.ok);
    assert!(
        got[1].1.detail.starts_with("HTTP 404 Not Found from Prometheus; is `url` the server's base URL (with its path prefix"),
        "{}",
        got[1].1.detail
    );
}

#[tokio::test]
async fn probe_when_prometheus_goes_down() {
    let Some(bin) = need("prometheus", "prometheus") else {
        return;
    };
    let prom = prometheus(&bin, &[], None).await;
    let l = experiment(
        &prom.base,
        &[("up", "{url: \"${prom}\", query: 'up', min: 1, timeout: 2s}")],
    );
    assert!(sample_all(&l).await[0].1.ok);
    drop(prom);
    let started = Instant::now();
    let s = sample_all(&l).await.remove(0).1;
    assert_eq!(
        (s.ok, s.detail.as_str()),
        (false, "cannot reach Prometheus: connection refused")
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

fn run_result(name: &str, verdict: &str, exit_code: u8) -> RunResult {
    serde_json::from_value(json!({
        "format_version": 1,
        "tool": {"name": "faultline", "version": "0.1.0"},
        "experiment": {"name": name, "file": "experiments/obs.yaml"},
        "verdict": verdict,
        "exit_code": exit_code,
        "started_at": "2026-11-30T12:00:00.000Z",
        "ended_at": "2026-11-30T12:00:06.400Z",
        "duration_ms": 6400,
        "targets": [{"platform": "docker", "id": "3f2a", "name": "web-1"}],
        "faults": [{"type": "pause", "target": "web-1",
            "injected_at": "2026-11-30T12:00:00.110Z", "reverted_at": "2026-11-30T12:00:05.130Z",
            "status": "reverted", "error": null}],
        "phases": {
            "before": {"passed": true, "probes": []},
            "during": {"passed": verdict == "passed", "probes": [{
                "name": "web \"mostly\" answers", "kind": "http", "samples": 20, "successes": 11,
                "success_ratio": 0.55, "min_success": 0.5, "passed": true,
                "latency_ms": {"p50": 2, "p95": 500, "max": 501}}]},
            "after": {"passed": true, "recovered_after_ms": 37, "probes": []}
        },
        "events": [{"at": "2026-11-30T12:00:06.400Z", "kind": "verdict",
            "message": format!("during probe `web` fell below 60% (token {TOKEN})")}]
    }))
    .unwrap()
}

#[tokio::test]
async fn pushed_metrics_reach_prometheus_through_a_real_pushgateway() {
    let (Some(prom_bin), Some(gw_bin)) = (
        need("prometheus", "prometheus"),
        need("prometheus-pushgateway", "prometheus-pushgateway"),
    ) else {
        return;
    };
    let gw = pushgateway(&gw_bin).await;
    let prom = prometheus(&prom_bin, &[("pushgateway", gw.port)], None).await;
    let c = client();
    let failed = format!("obs-push-{}", std::process::id());
    let slashed = format!("team/obs-{}", std::process::id());
    for (name, verdict, code) in [(&failed, "failed", 1), (&slashed, "passed", 0)] {
        let r = run_result(name, verdict, code);
        let text = metrics::render(std::slice::from_ref(&r));
        metrics::push(&c, &format!("{}/", gw.base), name, &text)
            .await
            .unwrap_or_else(|e| panic!("push {name}: {e}\n{}", gw.log_text()));
    }

    let q = format!("faultline_run_exit_code{{experiment=\"{failed}\"}}");
    let got = wait_for(&prom.base, &q, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("`{q}` never appeared in Prometheus"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "1");
    assert_eq!(got[0].0["job"], "faultline");
    let v = query(
        &prom.base,
        &format!("faultline_run_verdict{{experiment=\"{failed}\",verdict=\"failed\"}}"),
    )
    .await;
    assert_eq!(v[0].1, "1");
    let v = query(
        &prom.base,
        &format!("faultline_run_verdict{{experiment=\"{failed}\"}} == 0"),
    )
    .await;
    assert_eq!(v.len(), 6, "the six other verdicts are 0: {v:?}");
    let ratio = query(
        &prom.base,
        &format!("faultline_probe_success_ratio{{experiment=\"{failed}\",phase=\"during\"}}"),
    )
    .await;
    assert_eq!(ratio[0].1, "0.55");
    assert_eq!(ratio[0].0["probe"], "web \"mostly\" answers");
    for (metric, want) in [
        ("faultline_run_duration_seconds", "6.4"),
        ("faultline_run_recovery_seconds", "0.037"),
        ("faultline_faults_injected_total", "1"),
        ("faultline_faults_reverted_total", "1"),
        ("faultline_run_timestamp_seconds", "1796040006.4"),
    ] {
        let v = query(&prom.base, &format!("{metric}{{experiment=\"{failed}\"}}")).await;
        assert_eq!(v.first().map(|v| v.1.as_str()), Some(want), "{metric}");
    }
    // A name with `/` travels as experiment@base64 and arrives intact.
    let q = format!("faultline_run_exit_code{{experiment=\"{slashed}\"}}");
    let got = wait_for(&prom.base, &q, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("`{q}` never appeared in Prometheus"));
    assert_eq!(got[0].1, "0");

    // The gateway's refusal and its absence are plain errors.
    let e = metrics::push(&c, &gw.base, "bad", "not { the format\n")
        .await
        .unwrap_err();
    assert!(
        e.starts_with("the Pushgateway refused the metrics: HTTP 400"),
        "{e}"
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    let e = metrics::push(&c, &closed, "x", "a 1\n").await.unwrap_err();
    assert_eq!(e, "cannot reach the Pushgateway: connection refused");
}

#[test]
fn textfile_output_passes_promtool() {
    let Some(promtool) = need("promtool", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faultline.prom");
    let text = metrics::render(&[
        run_result("web-pause", "passed", 0),
        run_result("db-kill", "failed", 1),
    ]);
    metrics::write_textfile(&path, &text).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn secrets_of(l: &LoadedExperiment) -> Secrets {
    l.secrets.clone()
}

#[tokio::test]
async fn notifications_of_a_passing_and_a_failing_run_and_a_game_day() {
    let hooks = Receiver::start();
    let url = &hooks.url;
    let notifier = Notifier::new(
        &[format!("{url}/hook-a"), format!("{url}/hook-b")],
        client(),
    )
    .unwrap();
    let l = experiment(
        "http://127.0.0.1:9",
        &[(
            "p",
            "{url: \"${prom}\", query: up, min: 1, headers: {X-Token: \"${env:PROM_TOKEN}\"}}",
        )],
    );
    assert!(!secrets_of(&l).is_empty());

    notifier.send(&Notification::run_started(&l)).await;
    let passed = run_result("obs-probe", "passed", 0);
    notifier
        .send(&Notification::run_finished(&passed, &l.secrets).with_report(Path::new("out/r.json")))
        .await;
    let failed = run_result("obs-probe", "failed", 1);
    notifier
        .send(&Notification::run_finished(&failed, &l.secrets))
        .await;
    notifier
        .send(&Notification::gameday_started("nightly", 2))
        .await;
    notifier
        .send(
            &Notification::gameday_finished("nightly", &[passed, failed]).with_secrets(&l.secrets),
        )
        .await;

    let seen = hooks.received();
    assert_eq!(seen.len(), 10, "five events to two URLs");
    for Received { head, body, .. } in &seen {
        assert!(head.starts_with("post /hook-"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(!body.to_string().contains(TOKEN), "a secret leaked: {body}");
        assert!(body["text"].as_str().unwrap().starts_with("faultline: "));
    }
    let events: Vec<(&str, &Value)> = seen
        .iter()
        .filter(|r| r.path == "/hook-a")
        .map(|r| (r.body["event"].as_str().unwrap(), &r.body))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "run_finished",
            "run_finished",
            "gameday_started",
            "gameday_finished"
        ]
    );
    let start = events[0].1;
    assert_eq!(start["experiment"], "obs-probe");
    assert_eq!(start["verdict"], Value::Null);
    assert_eq!(start["file"], "obs.yaml");

    let ok = events[1].1;
    assert_eq!(ok["verdict"], "passed");
    assert_eq!(ok["exit_code"], 0);
    assert_eq!(ok["duration_ms"], 6400);
    assert_eq!(ok["recovered_after_ms"], 37);
    assert_eq!(ok["targets"], json!(["web-1"]));
    assert_eq!(ok["report"], "out/r.json");
    assert_eq!(
        ok["text"],
        "faultline: experiment `obs-probe` passed (exit 0) in 6.40s, recovered after 37ms; targets: web-1; report: out/r.json"
    );

    let bad = events[2].1;
    assert_eq!(bad["verdict"], "failed");
    assert_eq!(bad["exit_code"], 1);
    assert_eq!(
        bad["reason"],
        "during probe `web` fell below 60% (token ***)"
    );
    assert_eq!(
        bad["text"],
        "faultline: experiment `obs-probe` FAILED (exit 1) in 6.40s: during probe `web` fell below 60% (token ***); targets: web-1"
    );

    assert_eq!(events[3].1["scenario"], "nightly");
    assert_eq!(events[3].1["experiments"], 2);
    let day = events[4].1;
    assert_eq!(day["scenario"], "nightly");
    assert_eq!(day["verdict"], "failed");
    assert_eq!(day["exit_code"], 1);
    assert_eq!(day["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_receiver_that_is_down_or_silent_changes_nothing() {
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let live = Receiver::start();
    let r = run_result("obs-probe", "failed", 1);
    let n = Notification::run_finished(&r, &Secrets::default());
    let before = n.clone();

    let down = Notifier::new(std::slice::from_ref(&closed), client()).unwrap();
    let started = Instant::now();
    down.send(&n).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A silent receiver costs at most the 5s timeout, and the others still get theirs.
    let all = Notifier::new(&[closed, silent_url, format!("{}/ok", live.url)], client()).unwrap();
    let started = Instant::now();
    all.send(&n).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(7),
        "{took:?}"
    );
    assert_eq!(live.received().len(), 1);
    assert_eq!(n, before);
    assert_eq!(n.verdict, Some(faultline::report::Verdict::Failed));
    hold.abort();
}

#[tokio::test]
async fn a_run_through_the_binary_reports_the_prometheus_value() {
    let Some(bin) = need("prometheus", "prometheus") else {
        return;
    };
    let Some((fleet, web)) = support::one_web("obs") else {
        return;
    };
    let prom = prometheus(&bin, &[], None).await;
    let up = Probe::prometheus(&prom.base, "up{job=\"prometheus\"}")
        .with("min", "1")
        .with("max", "1")
        .with(
            "headers",
            "{Authorization: \"Bearer ${env:FLTEST_PROM_TOKEN}\"}",
        );
    let scrapes = Probe::prometheus(&prom.base, "count(up)").with("min", "1");
    let exp = Experiment::new("obs-prometheus-steady")
        .on(&fleet)
        .only(&web)
        .steady(up.named("prometheus is up"))
        .during("200ms", scrapes.named("scrape count grows"))
        .fault("pause: {duration: 1s}")
        .recovery("10s", "200ms");
    let run = Run::experiment(&exp)
        .json_report()
        .env("FLTEST_PROM_TOKEN", TOKEN);
    let out = tokio::task::spawn_blocking(move || run.output())
        .await
        .unwrap();
    out.expect(0);
    assert!(!out.report_text().contains(TOKEN));
    let r = out.report();
    let before = &r["phases"]["before"]["probes"][0];
    assert_eq!(before["kind"], "prometheus");
    assert_eq!(before["value"], 1.0);
    assert!(
        before["detail"]
            .as_str()
            .unwrap()
            .starts_with("value 1 within 1..1"),
        "{before}"
    );
    assert_eq!(r["phases"]["after"]["probes"][0]["value"], 1.0);
    let during = &r["phases"]["during"]["probes"][0];
    let timeline = during["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty(), "{during}");
    assert!(timeline.iter().all(|p| p["value"] == 1.0), "{during}");
}
