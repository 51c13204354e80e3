//! `faultline report` and the junit, markdown and html renderers, driven through the binary
//! on hand-built JSON reports: a passing pause, a failing network fault, and a run whose
//! fault could not be injected.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::{Value, json};
use support::{Experiment, Run, Skip, StateDir, assert_contains, require_docker, skip};

fn at(ms: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z").unwrap();
    (t0 + chrono::Duration::milliseconds(ms))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn event(ms: i64, kind: &str, message: &str) -> Value {
    json!({"at": at(ms), "kind": kind, "message": message})
}

/// The last event of every run.
fn verdict(ms: i64, message: &str) -> Value {
    event(ms, "verdict", message)
}

/// Samples every 250ms from 120ms; those in `failing` fail at the probe's timeout.
fn timeline(n: u64, failing: std::ops::Range<u64>) -> Value {
    let points: Vec<Value> = (0..n)
        .map(|i| {
            let ok = !failing.contains(&i);
            json!({"at_ms": 120 + i * 250, "ok": ok, "latency_ms": if ok { 2 + i % 4 } else { 500 }})
        })
        .collect();
    Value::Array(points)
}

fn probe(name: &str, passed: bool, detail: &str) -> Value {
    json!({"name": name, "kind": "http", "passed": passed, "attempts": 1, "duration_ms": 3, "detail": detail})
}

fn passed_pause() -> Value {
    json!({
        "format_version": 1,
        "tool": {"name": "faultline", "version": "0.1.0"},
        "experiment": {"name": "web-survives-pause", "file": "experiments/web-pause.yaml"},
        "verdict": "passed",
        "exit_code": 0,
        "started_at": at(0),
        "ended_at": at(5300),
        "duration_ms": 5300,
        "seed": 7,
        "targets": [
            {"platform": "docker", "id": "3f2a9c0d11e4b5a6c7d8e9f0", "name": "web-1"},
            {"platform": "docker", "id": "8b1c2d3e4f5a6b7c8d9e0f1a", "name": "web-2"}
        ],
        "faults": [
            {"type": "pause", "target": "web-1", "injected_at": at(110), "reverted_at": at(5130),
             "status": "reverted", "error": null, "description": "pause for 5s"},
            {"type": "pause", "target": "web-2", "injected_at": at(112), "reverted_at": at(5131),
             "status": "reverted", "error": null, "description": "pause for 5s"}
        ],
        "phases": {
            "before": {"passed": true, "probes": [probe("web answers", true, "200 OK in 3ms")]},
            "during": {"passed": true, "probes": [{
                "name": "web mostly answers", "kind": "http", "samples": 20, "successes": 11,
                "success_ratio": 0.55, "min_success": 0.5, "passed": true,
                "latency_ms": {"p50": 4, "p95": 500, "max": 500},
                "timeline": timeline(20, 5..14)
            }]},
            "after": {"passed": true, "recovered_after_ms": 37,
                      "probes": [probe("web answers", true, "200 OK in 2ms")]}
        },
        "events": [
            event(20, "targets_selected", "web-1, web-2 (seed 7)"),
            event(110, "fault_injected", "pause web-1"),
            event(112, "fault_injected", "pause web-2"),
            event(5130, "fault_reverted", "pause web-1"),
            event(5131, "fault_reverted", "pause web-2"),
            event(5168, "recovered", "steady state holds again after 37ms"),
            verdict(5300, "the hypothesis held")
        ]
    })
}

/// [`passed_pause`] renamed to experiment `name` on one target, with another verdict.
fn variant(name: &str, verdict: &str, exit_code: u8, (id, target): (&str, &str)) -> Value {
    let mut r = passed_pause();
    r["experiment"] = json!({"name": name, "file": format!("experiments/{name}.yaml")});
    r["verdict"] = json!(verdict);
    r["exit_code"] = json!(exit_code);
    r["targets"] = json!([{"platform": "docker", "id": id, "name": target}]);
    r
}

/// The during probe falls below its bar and steady state does not come back.
fn failed_latency() -> Value {
    let mut r = variant("api-latency", "failed", 1, ("77aa", "api-1"));
    r["faults"] = json!([{"type": "network", "target": "api-1", "injected_at": at(100),
        "reverted_at": at(3100), "status": "reverted", "error": null,
        "description": "delay 400ms"}]);
    r["phases"]["during"] = json!({"passed": false, "probes": [
        {"name": "api is fast", "kind": "http", "samples": 12, "successes": 3,
         "success_ratio": 0.25, "min_success": 0.9, "passed": false,
         "latency_ms": {"p50": 500, "p95": 500, "max": 500}, "timeline": timeline(12, 3..12)},
        {"name": "api port open", "kind": "tcp", "samples": 12, "successes": 12,
         "success_ratio": 1.0, "min_success": 1.0, "passed": true,
         "latency_ms": {"p50": 1, "p95": 1, "max": 1}, "timeline": timeline(12, 0..0)}
    ]});
    r["phases"]["after"] = json!({"passed": false, "probes": [
        probe("web answers", false, "timed out after 2s <http://127.0.0.1:8080/?a=1&b=2>")]});
    r["events"] = json!([
        event(20, "targets_selected", "api-1 (seed 7)"),
        event(100, "fault_injected", "network api-1"),
        event(3100, "fault_reverted", "network api-1"),
        event(8100, "not_recovered", "steady state did not hold within 5s"),
        verdict(
            8110,
            "a during probe fell below its bar and steady state did not recover in time"
        )
    ]);
    r["ended_at"] = json!(at(8110));
    r["duration_ms"] = json!(8110);
    r
}

/// A fault could not be injected: verdict error, no after phase.
fn error_run() -> Value {
    let mut r = variant("db-kill", "error", 4, ("99bb", "db-1"));
    r["faults"] = json!([{"type": "kill", "target": "db-1", "injected_at": null,
        "reverted_at": null, "status": "failed",
        "error": "container db-1 is not running", "description": "kill with SIGKILL"}]);
    r["phases"]["during"] = Value::Null;
    r["phases"]["after"] = Value::Null;
    r["events"] = json!([
        event(20, "targets_selected", "db-1 (seed 7)"),
        event(
            60,
            "fault_failed",
            "kill db-1: container db-1 is not running"
        ),
        verdict(
            70,
            "a fault could not be injected (kill on db-1: container db-1 is not running); every fault was reverted"
        )
    ]);
    r["duration_ms"] = json!(70);
    r
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// A passing pause, a failing network fault and a run whose fault was not injected.
fn three_reports(dir: &Path) -> [PathBuf; 3] {
    [
        write(dir, "a.json", &passed_pause()),
        write(dir, "b.json", &failed_latency()),
        write(dir, "c.json", &error_run()),
    ]
}

fn render(files: &[&Path], format: &str) -> String {
    Run::report(files, format).output().expect(0).stdout.clone()
}

// ---- A small XML reader, enough to check the JUnit structure independently of any library.

#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.children.iter().filter(|c| c.name == name).count()
    }

    fn num(&self, name: &str) -> usize {
        let v = self
            .attr(name)
            .unwrap_or_else(|| panic!("<{}> lacks `{name}`", self.name));
        v.parse()
            .unwrap_or_else(|_| panic!("<{}> {name}=\"{v}\" is not a count", self.name))
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .unwrap_or_else(|| panic!("unterminated entity in {s:?}"));
        let entity = &rest[i + 1..i + end];
        out.push(match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&e[2..], 16).unwrap()).unwrap()
            }
            e if e.starts_with('#') => char::from_u32(e[1..].parse().unwrap()).unwrap(),
            e => panic!("unknown entity &{e}; in {s:?}"),
        });
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    assert!(!out.is_empty() || s.is_empty());
    out
}

/// Parses a well-formed XML document (declaration, comments, elements, attributes, text).
fn parse_xml(doc: &str) -> Element {
    let mut stack: Vec<Element> = vec![Element {
        name: "#document".into(),
        attrs: vec![],
        children: vec![],
        text: String::new(),
    }];
    let mut rest = doc;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").expect("unterminated <?") + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").expect("unterminated comment") + 3..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').expect("unterminated end tag");
            let name = r[..end].trim();
            let done = stack.pop().unwrap();
            assert_eq!(done.name, name, "mismatched end tag");
            stack.last_mut().unwrap().children.push(done);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('<') {
            // Attribute values may contain `>` only escaped, so the first `>` ends the tag.
            let end = r.find('>').expect("unterminated start tag");
            let (body, empty) = match r[..end].strip_suffix('/') {
                Some(b) => (b, true),
                None => (&r[..end], false),
            };
            let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let mut el = Element {
                name: body[..name_end].to_string(),
                attrs: vec![],
                children: vec![],
                text: String::new(),
            };
            let mut a = body[name_end..].trim_start();
            while !a.is_empty() {
                let eq = a.find('=').expect("attribute without =");
                let key = a[..eq].trim().to_string();
                let q = a[eq + 1..].chars().next().unwrap();
                assert!(q == '"' || q == '\'', "unquoted attribute {key}");
                let v = &a[eq + 2..];
                let close = v.find(q).expect("unterminated attribute value");
                assert!(!v[..close].contains('<'), "raw < in attribute {key}");
                assert!(
                    !el.attrs.iter().any(|(k, _)| *k == key),
                    "duplicate attribute {key}"
                );
                el.attrs.push((key, unescape(&v[..close])));
                a = v[close + 1..].trim_start();
            }
            if empty {
                stack.last_mut().unwrap().children.push(el);
            } else {
                stack.push(el);
            }
            rest = &r[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = unescape(&rest[..end]);
            if stack.len() == 1 {
                assert!(text.trim().is_empty(), "text outside the root: {text:?}");
            }
            stack.last_mut().unwrap().text.push_str(&text);
            rest = &rest[end..];
        }
    }
    assert_eq!(
        stack.len(),
        1,
        "unclosed elements: {:?}",
        stack.last().unwrap().name
    );
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "exactly one root element");
    doc.children.pop().unwrap()
}

/// The structure of the common JUnit schema, plus what a schema cannot say: the counts
/// agree with the cases, names are unique within a suite, failures say why.
fn check_junit(xml: &str) -> Element {
    let root = parse_xml(xml);
    assert_eq!(root.name, "testsuites");
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for suite in &root.children {
        assert_eq!(suite.name, "testsuite");
        assert!(!suite.attr("name").unwrap().is_empty());
        let cases: Vec<&Element> = suite
            .children
            .iter()
            .filter(|c| c.name == "testcase")
            .collect();
        let mut order = suite.children.iter().map(|c| c.name.as_str()).peekable();
        if order.peek() == Some(&"properties") {
            order.next();
        }
        let order: Vec<&str> = order.skip_while(|n| *n == "testcase").collect();
        assert!(
            order
                .iter()
                .all(|n| ["system-out", "system-err"].contains(n)),
            "unexpected children order in a testsuite: {order:?}"
        );
        let failed = cases.iter().filter(|c| c.count("failure") > 0).count();
        let errored = cases.iter().filter(|c| c.count("error") > 0).count();
        assert_eq!(
            suite.num("tests"),
            cases.len(),
            "tests of {:?}",
            suite.attr("name")
        );
        assert_eq!(
            suite.num("failures"),
            failed,
            "failures of {:?}",
            suite.attr("name")
        );
        assert_eq!(
            suite.num("errors"),
            errored,
            "errors of {:?}",
            suite.attr("name")
        );
        let mut names = std::collections::HashSet::new();
        for c in &cases {
            let name = c.attr("name").unwrap();
            assert!(names.insert(name), "duplicate testcase name {name:?}");
            assert_eq!(c.attr("classname"), suite.attr("name"));
            if let Some(t) = c.attr("time") {
                assert!(t.parse::<f64>().is_ok_and(|t| t >= 0.0), "time {t}");
            }
            for child in &c.children {
                assert!(
                    ["failure", "error", "skipped", "system-out", "system-err"]
                        .contains(&child.name.as_str()),
                    "unexpected <{}> in a testcase",
                    child.name
                );
                if child.name == "failure" || child.name == "error" {
                    assert!(
                        child.attr("message").is_some_and(|m| !m.is_empty()),
                        "<{}> without a message in {name:?}",
                        child.name
                    );
                    assert!(child.attr("type").is_some_and(|m| !m.is_empty()));
                }
            }
        }
        tests += cases.len();
        failures += failed;
        errors += errored;
    }
    assert_eq!(root.num("tests"), tests);
    assert_eq!(root.num("failures"), failures);
    assert_eq!(root.num("errors"), errors);
    root
}

fn case<'a>(root: &'a Element, suite: &str, name: &str) -> &'a Element {
    root.children
        .iter()
        .find(|s| s.attr("name") == Some(suite))
        .unwrap_or_else(|| panic!("no suite {suite}"))
        .children
        .iter()
        .find(|c| c.name == "testcase" && c.attr("name") == Some(name))
        .unwrap_or_else(|| panic!("no case {name:?} in {suite}"))
}

/// Validates against tests/fixtures/junit.xsd with xmllint (Debian's libxml2-utils) when
/// it is installed; returns whether it ran.
fn xmllint_validate(path: &Path) -> bool {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    let Ok(out) = StdCommand::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&xsd)
        .arg(path)
        .output()
    else {
        skip(
            Skip::Missing,
            "xmllint (Debian package `libxml2-utils`) is not installed; \
             JUnit output checked structurally only, not against the XSD",
        );
        return false;
    };
    assert!(
        out.status.success(),
        "JUnit XML does not validate against junit.xsd:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap()
    );
    true
}

#[test]
fn junit_of_a_game_day_validates_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c] = three_reports(dir.path());
    let xml_path = dir.path().join("out/junit.xml");
    let out = Run::report(&[&a, &b, &c], "junit").out(&xml_path).output();
    assert_eq!(out.expect(0).stdout, "");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let root = check_junit(&xml);
    xmllint_validate(&xml_path);

    let suites: Vec<&str> = root
        .children
        .iter()
        .map(|s| s.attr("name").unwrap())
        .collect();
    assert_eq!(suites, ["web-survives-pause", "api-latency", "db-kill"]);
    let names: Vec<&str> = root.children[0]
        .children
        .iter()
        .filter(|c| c.name == "testcase")
        .map(|c| c.attr("name").unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "before: web answers",
            "during: web mostly answers",
            "after: web answers",
            "fault: pause web-1",
            "fault: pause web-2"
        ]
    );
    assert_eq!(
        (root.num("tests"), root.num("failures"), root.num("errors")),
        (13, 2, 2)
    );

    let during = case(&root, "api-latency", "during: api is fast");
    let failure = &during.children[0];
    assert_eq!(
        failure.attr("message"),
        Some("success ratio 0.25 below min_success 0.90 (3 of 12 samples ok)")
    );
    assert!(
        failure
            .text
            .contains("failed samples at (from the run's start): 870ms, 1.12s"),
        "{}",
        failure.text
    );
    assert!(
        case(&root, "api-latency", "during: api port open")
            .children
            .is_empty()
    );
    let after = &case(&root, "api-latency", "after: web answers").children[0];
    assert_eq!(after.attr("type"), Some("not_recovered"));
    assert_eq!(
        after.attr("message"),
        Some("timed out after 2s <http://127.0.0.1:8080/?a=1&b=2>")
    );

    let fault = &case(&root, "db-kill", "fault: kill db-1").children[0];
    assert_eq!(
        (fault.name.as_str(), fault.attr("message")),
        ("error", Some("container db-1 is not running"))
    );
    let verdict = &case(&root, "db-kill", "verdict").children[0];
    assert_eq!(verdict.name, "error");
    assert_eq!(verdict.attr("type"), Some("error"));
    assert!(
        verdict
            .attr("message")
            .unwrap()
            .starts_with("a fault could not be injected")
    );
}

#[test]
fn junit_of_a_run_that_was_not_steady() {
    let mut r = passed_pause();
    r["verdict"] = json!("not_steady");
    r["exit_code"] = json!(3);
    r["faults"] = json!([]);
    r["phases"] = json!({"before": {"passed": false, "probes": [
        {"name": "web answers", "kind": "http", "passed": false, "attempts": 3,
         "duration_ms": 1, "detail": "connection refused"}]}, "during": null, "after": null});
    r["events"] = json!([
        event(10, "targets_selected", "web-1"),
        verdict(
            3000,
            "steady state did not hold before injection; nothing was injected"
        )
    ]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "r.json", &r);
    let xml = render(&[&f], "junit");
    let root = check_junit(&xml);
    assert_eq!(
        (root.num("tests"), root.num("failures"), root.num("errors")),
        (1, 1, 0)
    );
    let failure = &case(&root, "web-survives-pause", "before: web answers").children[0];
    assert_eq!(failure.attr("message"), Some("connection refused"));
    assert_eq!(failure.attr("type"), Some("not_steady"));
    let path = dir.path().join("r.xml");
    std::fs::write(&path, &xml).unwrap();
    xmllint_validate(&path);
}

#[test]
fn run_writes_junit_markdown_and_html_reports() {
    // No container carries this label: the run stops with `no_targets` and touches nothing.
    if !require_docker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |ext: &str| dir.path().join(format!("r.{ext}"));
    let (xml, md, html, json) = (path("xml"), path("md"), path("html"), path("json"));
    let exp = Experiment::new("nothing-matches")
        .on_nothing()
        .fault("pause: {duration: 1s}");
    let mut run = Run::experiment(&exp).state(&StateDir::new());
    for (format, file) in [
        ("junit", &xml),
        ("markdown", &md),
        ("html", &html),
        ("json", &json),
    ] {
        run = run
            .arg("--report")
            .arg(format!("{format}:{}", file.display()));
    }
    run.output().expect(3);
    let root = check_junit(&std::fs::read_to_string(&xml).unwrap());
    xmllint_validate(&xml);
    let verdict = &case(&root, "nothing-matches", "verdict").children[0];
    assert_eq!(
        (verdict.name.as_str(), verdict.attr("type")),
        ("failure", Some("no_targets"))
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.starts_with("### faultline: nothing-matches\n\n**NO TARGETS** (exit 3)"),
        "{md}"
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("<span class=\"badge v-no_targets\">NO TARGETS</span>"));
    assert!(html.contains("<svg id=\"timeline\""));
    // The saved JSON renders to the same documents.
    assert_eq!(render(&[&json], "markdown"), md);
    assert_eq!(render(&[&json], "html"), html);
}

#[test]
fn markdown_has_the_probe_and_fault_tables() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "b.json", &failed_latency());
    let md = render(&[&b], "markdown");
    assert!(md.starts_with("### faultline: api-latency\n\n**FAILED** (exit 1) in 8.11s: a during probe fell below its bar"), "{md}");
    assert_contains(
        &md,
        &[
            "Recovery time: **did not recover in time**.",
            "| phase | probe | result | detail |\n|---|---|---|---|\n",
            "| during | api is fast | **FAIL** | 3/12 ok (25%, need 90%); latency p50 500ms, p95 500ms, max 500ms |",
            "| after | web answers | **FAIL** | timed out after 2s \\<http://127.0.0.1:8080/?a=1&b=2\\> |",
            "| fault | target | status | active | error |\n|---|---|---|---|---|\n| delay 400ms | api-1 | reverted | 3.00s |  |",
        ],
    );
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        assert!(line.ends_with(" |"), "every row is closed: {line}");
    }
    // No emoji: the status is a word.
    assert!(md.is_ascii(), "{md}");
}

#[test]
fn markdown_of_several_reports_is_a_summary_then_each_report() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c] = three_reports(dir.path());
    let md = render(&[&a, &b, &c], "markdown");
    assert!(md.starts_with("### faultline: 3 experiments\n\n| experiment | verdict | exit | duration | recovery | reason |\n"), "{md}");
    assert_contains(
        &md,
        &[
            "| web-survives-pause | PASSED | 0 | 5.30s | 37ms | the hypothesis held |",
            "| db-kill | **ERROR** | 4 | 70ms | - |",
            "Totals: 3 experiments: 1 passed, 1 failed, 1 error; highest exit code 4.\n",
            "| kill with SIGKILL | db-1 | **failed** | never | container db-1 is not running |",
        ],
    );
    let a_at = md.find("### faultline: web-survives-pause").unwrap();
    let c_at = md.find("### faultline: db-kill").unwrap();
    assert!(md.find("Totals:").unwrap() < a_at && a_at < c_at);
}

/// Every `src=`/`href=` and CSS `url(` on the page, to prove nothing is fetched.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for key in ["src=\"", "href=\"", "url(", "@import", "srcset="] {
        let mut rest = html;
        while let Some(i) = rest.find(key) {
            let tail = &rest[i + key.len()..];
            let end = tail.find(['"', ')']).unwrap_or(tail.len());
            refs.push(format!("{key}{}", &tail[..end]));
            rest = &tail[end..];
        }
    }
    refs
}

#[test]
fn html_draws_the_timeline_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "b.json", &failed_latency());
    let out = dir.path().join("report.html");
    Run::report(&[&b], "html").out(&out).output().expect(0);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg id=\"timeline\""), "{html}");
    // A mark per sample of both during probes, red for failed ones.
    assert_eq!(html.matches("class=\"sample\"").count(), 24);
    assert_eq!(html.matches(": failed in 500ms</title>").count(), 9);
    // A fault band on the target's row; the three phases; the missed recovery.
    assert_eq!(html.matches("<rect class=\"fault\"").count(), 1);
    assert!(
        html.contains("delay 400ms on api-1: injected at +100ms, reverted at +3.10s"),
        "{html}"
    );
    for phase in ["before", "during", "after"] {
        assert!(html.contains(&format!("phase phase-{phase}")), "{phase}");
    }
    assert!(html.contains("not recovered in time"));
    // Text is escaped, including the probe URL in a detail.
    assert!(html.contains("timed out after 2s &lt;http://127.0.0.1:8080/?a=1&amp;b=2&gt;"));
    assert!(!html.contains("<http"));
    // Self-contained: the only references are in-page, the only URLs escaped probe text.
    for r in references(&html) {
        assert!(
            r.starts_with("href=\"#") || r.starts_with("url(#"),
            "external reference {r}"
        );
    }
    for (i, _) in html
        .match_indices("http://")
        .chain(html.match_indices("https://"))
    {
        let before = &html[..i];
        assert!(
            before.ends_with("&lt;"),
            "a URL outside escaped probe text at {i}: {}",
            &html[i.saturating_sub(60)..i + 40]
        );
    }
    assert!(!html.contains("<script"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<img"));
}

#[test]
fn html_of_several_reports_is_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c] = three_reports(dir.path());
    let html = render(&[&a, &b, &c], "html");
    assert_eq!(html.matches("<!DOCTYPE html>").count(), 1);
    assert_eq!(html.matches("<section class=\"experiment\"").count(), 3);
    assert!(html.contains("<svg id=\"timeline\""));
    assert!(html.contains("<svg id=\"timeline-2\""));
    assert!(html.contains("<svg id=\"timeline-3\""));
    assert!(html.contains("<a href=\"#experiment-3\">db-kill</a>"));
    assert!(html.contains("3 experiments: 1 passed, 1 failed, 1 error; highest exit code 4"));
    // Two pause bands on two target rows in the first experiment.
    assert!(html.contains(">web-2</text>"));
    assert_eq!(html.matches("class=\"sample\"").count(), 20 + 24);
}

#[test]
fn a_bad_json_report_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &passed_pause());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format_version\": 1, \"tool\": ").unwrap();
    let out = Run::report(&[&good, &bad], "junit").output();
    out.expect(2)
        .stderr_has("bad.json: not a faultline JSON report")
        .stderr_has("line 1");
    assert!(out.stdout.is_empty());

    let mut wrong = passed_pause();
    wrong["phases"]["during"]["probes"][0]["samples"] = json!("many");
    let wrong = write(dir.path(), "wrong.json", &wrong);
    Run::report(&[&wrong], "html")
        .output()
        .expect(2)
        .stderr_has("wrong.json: not a faultline JSON report")
        .stderr_has("phases.during.probes[0].samples");

    Run::report(&[dir.path().join("missing.json")], "markdown")
        .output()
        .expect(2)
        .stderr_has("cannot read");

    let mut newer = passed_pause();
    newer["format_version"] = json!(2);
    let newer = write(dir.path(), "newer.json", &newer);
    Run::report(&[&newer], "markdown")
        .output()
        .expect(2)
        .stderr_has("format_version 2 is not supported");
}

#[test]
fn a_json_report_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &passed_pause());
    let again: Value = serde_json::from_str(&render(&[&a], "json")).unwrap();
    assert_eq!(again, passed_pause());
}

#[test]
fn the_committed_example_report_still_renders() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-example.json");
    let html = render(&[&example], "html");
    assert!(html.contains("<svg id=\"timeline\""));
    let xml = render(&[&example], "junit");
    check_junit(&xml);
}
