//! Test harness for end-to-end tests against the real Docker engine: locally built images,
//! labelled containers that are removed even when a test fails, and docker CLI helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const IMAGE: &str = "faultline-test/busybox:1";
/// Every container a test creates carries this label, so CI can find leftovers.
pub const TEST_LABEL: &str = "faultline.test";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the engine answers; end-to-end tests say loudly when they cannot run.
pub fn docker_available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        let ok = Command::new("docker")
            .args(["info"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            let out = Command::new("bash")
                .arg(root().join("scripts/test-images.sh"))
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "building test images failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ok
    });
    if !ok {
        eprintln!(
            "SKIPPED: the Docker engine does not answer (`docker info` failed); end-to-end test not run"
        );
    }
    ok
}

/// Containers of one test, removed on drop (also when the test panics).
pub struct Fleet {
    pub group: String,
    pub names: Vec<String>,
}

impl Fleet {
    pub fn new(test: &str) -> Fleet {
        let group = format!("{test}-{}-{}", std::process::id(), rand_suffix());
        Fleet {
            group,
            names: Vec::new(),
        }
    }

    /// Starts a busybox httpd container published on a loopback port; returns its name.
    pub fn web(&mut self, extra: &[&str]) -> String {
        let name = format!("fl-{}-{}", self.group, self.names.len() + 1);
        let label = format!("fltest.group={}", self.group);
        let test_label = format!("{TEST_LABEL}=true");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &label,
            "--label",
            &test_label,
            "-p",
            "127.0.0.1::80",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
        docker_ok(&args);
        self.names.push(name.clone());
        wait_until(Duration::from_secs(10), || http_ok(&self.url(&name)));
        name
    }

    pub fn url(&self, name: &str) -> String {
        let port = docker_ok(&["port", name, "80/tcp"]);
        let port = port
            .lines()
            .next()
            .unwrap_or("")
            .rsplit(':')
            .next()
            .unwrap_or("")
            .to_string();
        format!("http://127.0.0.1:{port}/")
    }

    pub fn id(&self, name: &str) -> String {
        docker_ok(&["inspect", "-f", "{{.Id}}", name])
    }

    pub fn label(&self) -> String {
        self.group.clone()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let filter = format!("label=fltest.group={}", self.group);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker(&["unpause", id]);
            let _ = docker(&["rm", "-f", id]);
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() % 100_000) as u32
}

pub fn http_ok(url: &str) -> bool {
    let hostport = url.trim_start_matches("http://").trim_end_matches('/');
    let Ok(addr) = hostport.parse::<std::net::SocketAddr>() else {
        return false;
    };
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn paused(name: &str) -> bool {
    docker_ok(&["inspect", "-f", "{{.State.Paused}}", name]) == "true"
}

pub fn running(name: &str) -> bool {
    docker_ok(&["inspect", "-f", "{{.State.Running}}", name]) == "true"
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn faultline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faultline"));
    c.env("FAULTLINE_LOG", "faultline=warn");
    // Tests keep their journal and audit log out of the user's state directory.
    c.env("FAULTLINE_STATE_DIR", root().join("target/test-state"));
    c
}

/// Checks a JSON report against spec section 6: every field, its type, the enumerations,
/// and that the verdict agrees with the exit code.
pub fn assert_spec_report(r: &serde_json::Value) {
    use serde_json::Value;
    let obj = r.as_object().expect("the report is an object");
    for key in [
        "format_version",
        "tool",
        "experiment",
        "verdict",
        "exit_code",
        "started_at",
        "ended_at",
        "duration_ms",
        "targets",
        "faults",
        "phases",
        "events",
    ] {
        assert!(obj.contains_key(key), "report lacks `{key}`");
    }
    assert_eq!(r["format_version"], 1);
    assert_eq!(r["tool"]["name"], "faultline");
    assert!(r["tool"]["version"].is_string());
    assert!(r["experiment"]["name"].is_string() && r["experiment"]["file"].is_string());
    let verdict = r["verdict"].as_str().unwrap();
    let expected_code = match verdict {
        "passed" => 0,
        "failed" => 1,
        "not_steady" | "no_targets" => 3,
        "error" => 4,
        "revert_incomplete" => 5,
        "interrupted" => 130,
        other => panic!("unknown verdict {other}"),
    };
    assert_eq!(r["exit_code"], expected_code);
    let ts = |v: &Value| {
        let s = v.as_str().expect("a timestamp string");
        assert!(
            s.ends_with('Z') && s.len() == 24,
            "timestamp `{s}` is not RFC 3339 with milliseconds"
        );
    };
    ts(&r["started_at"]);
    ts(&r["ended_at"]);
    assert!(r["duration_ms"].is_u64());
    for t in r["targets"].as_array().unwrap() {
        assert!(t["platform"].is_string() && t["id"].is_string() && t["name"].is_string());
    }
    for f in r["faults"].as_array().unwrap() {
        assert!(f["type"].is_string() && f["target"].is_string());
        assert!(
            ["reverted", "completed", "failed", "active"].contains(&f["status"].as_str().unwrap())
        );
        assert!(f["error"].is_null() || f["error"].is_string());
        for k in ["injected_at", "reverted_at"] {
            if !f[k].is_null() {
                ts(&f[k]);
            }
        }
    }
    let phases = &r["phases"];
    for p in ["before", "after"] {
        if phases[p].is_null() {
            continue;
        }
        assert!(phases[p]["passed"].is_boolean());
        for probe in phases[p]["probes"].as_array().unwrap() {
            for k in ["name", "kind", "detail"] {
                assert!(probe[k].is_string(), "{p} probe lacks {k}");
            }
            assert!(
                probe["passed"].is_boolean()
                    && probe["attempts"].is_u64()
                    && probe["duration_ms"].is_u64()
            );
        }
    }
    if !phases["during"].is_null() {
        assert!(phases["during"]["passed"].is_boolean());
        for probe in phases["during"]["probes"].as_array().unwrap() {
            for k in ["samples", "successes"] {
                assert!(probe[k].is_u64());
            }
            assert!(probe["success_ratio"].is_f64() || probe["success_ratio"].is_u64());
            assert!(probe["min_success"].is_number() && probe["passed"].is_boolean());
            for k in ["p50", "p95", "max"] {
                assert!(probe["latency_ms"][k].is_u64());
            }
        }
    }
    for e in r["events"].as_array().unwrap() {
        ts(&e["at"]);
        assert!(e["kind"].is_string() && e["message"].is_string());
    }
}

/// The qdiscs on the container's eth0, read from the host.
pub fn qdiscs(name: &str) -> String {
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", "tc", "qdisc", "show", "dev", "eth0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Helpers faultline started for this container.
pub fn helpers(name: &str) -> usize {
    let id = docker_ok(&["inspect", "-f", "{{.Id}}", name]);
    docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=faultline.helper",
        "--filter",
        &format!("label=faultline.target={id}"),
    ])
    .lines()
    .count()
}
