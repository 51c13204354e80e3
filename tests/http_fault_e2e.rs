//! The `http` fault end to end: faultline's transparent proxy in a busybox httpd
//! container's network namespace, measured with a raw HTTP/1.1 client from the host
//! (status, body, timing per request) and `iptables -t nat -S` read in the namespace.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// One answer: its status and body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
}

/// Reads one answer from `s` (the server closes or says Content-Length).
fn read_answer(s: &mut TcpStream) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before an answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let mut body = buf[head_end..].to_vec();
    match length {
        Some(n) => {
            while body.len() < n {
                let k = s.read(&mut chunk)?;
                if k == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..k]);
            }
            body.truncate(n);
        }
        None => {
            s.read_to_end(&mut body)?;
        }
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// One request on a new connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> std::io::Result<Answer> {
    request_within(addr, method, path, headers, Duration::from_secs(5))
}

fn request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    timeout: Duration,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    send(&mut s, method, path, headers)?;
    read_answer(&mut s)
}

fn send(s: &mut TcpStream, method: &str, path: &str, headers: &[&str]) -> std::io::Result<()> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if method == "POST" {
        req.push_str("Content-Length: 2\r\n\r\nhi");
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes())
}

/// `n` requests to `path`, 8 at a time; the answers in no particular order.
fn many(addr: SocketAddr, path: &'static str, n: usize) -> Vec<Option<Answer>> {
    let per = n.div_ceil(8);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..per)
                    .map(|_| request(addr, "GET", path, &[]).ok())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.truncate(n);
    all
}

/// Milliseconds of `n` requests, sorted.
fn timings(addr: SocketAddr, method: &str, headers: &[&str], n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let ok = request(addr, method, "/index.html", headers).is_ok();
            if ok {
                t.elapsed().as_secs_f64() * 1000.0
            } else {
                1e9
            }
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn p50(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

/// The real server's files, distinct per path.
const API_BODY: &str = "api-real";
const HEALTH_BODY: &str = "health-real";

fn nat_rules(name: &str) -> String {
    in_netns(name, &["iptables", "-w", "-t", "nat", "-S", "PREROUTING"])
}

fn has_redirect(name: &str) -> bool {
    nat_rules(name).contains("faultline-http-")
}

/// Proxies running in the container's network namespace.
fn proxies(name: &str) -> usize {
    let pid = inspect(name, "{{.State.Pid}}");
    let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    host_processes("\0http-proxy\0")
        .into_iter()
        .filter(|p| std::fs::read_link(p.join("ns/net")).is_ok_and(|n| n == netns))
        .count()
}

struct Setup {
    fleet: Fleet,
    web: String,
    addr: SocketAddr,
}

fn setup(test: &str) -> Option<Setup> {
    if !require_docker()
        || require_program("iptables", "iptables", "the http fault cannot redirect").is_none()
    {
        return None;
    }
    let mut fleet = Fleet::new(test);
    let web = fleet.web(&[]);
    docker_ok(&[
        "exec",
        &web,
        "sh",
        "-c",
        &format!(
            "mkdir -p /www/api && echo {API_BODY} > /www/api/x && echo {HEALTH_BODY} > /www/health"
        ),
    ]);
    let addr = container_addr(&web);
    assert!(
        wait_until(Duration::from_secs(10), || request(
            addr,
            "GET",
            "/health",
            &[]
        )
        .is_ok_and(|a| a.status == 200)),
        "{web} does not serve HTTP at {addr}"
    );
    Some(Setup { fleet, web, addr })
}

impl Setup {
    fn experiment(&self, params: &str, duration: &str) -> Experiment {
        Experiment::new("http").on(&self.fleet).fault(&format!(
            "http: {{port: 80, {params}, duration: {duration}}}"
        ))
    }

    fn start(&self, run: Run) -> Running {
        let running = run.spawn();
        assert!(
            wait_until(Duration::from_secs(10), || has_redirect(&self.web)),
            "no redirect appeared: {}",
            nat_rules(&self.web)
        );
        running
    }
}

#[test]
fn abort_answers_a_share_of_matching_paths_and_passes_the_rest() {
    let Some(s) = setup("http-abort") else { return };
    let exp = s.experiment(
        "match: {path: /api/*, percent: 30}, abort: {status: 503}",
        "15s",
    );
    let run = s.start(Run::experiment(&exp).json_report());
    let started = Instant::now();
    let api = many(s.addr, "/api/x", 1000);
    let health = many(s.addr, "/health", 300);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the requests outlasted the fault"
    );
    let out = run.wait();
    out.expect(0);
    let aborted = api
        .iter()
        .filter(|a| a.as_ref().is_some_and(|a| a.status == 503))
        .count();
    let real = api
        .iter()
        .filter(|a| {
            a.as_ref()
                .is_some_and(|a| a.status == 200 && a.body.trim() == API_BODY)
        })
        .count();
    assert_eq!(
        aborted + real,
        1000,
        "answers other than 503 or the real file"
    );
    let share = aborted as f64 / 10.0;
    assert!(
        (26.0..=34.0).contains(&share),
        "{share}% of /api/* were 503, expected 30 ± 4"
    );
    assert!(
        health.iter().all(|a| a
            .as_ref()
            .is_some_and(|a| a.status == 200 && a.body.trim() == HEALTH_BODY)),
        "a /health request was not answered by the server"
    );
    // The counters in the report agree with what the client saw.
    let r = out.report();
    let counts = &r["faults"][0]["effects"]["http"];
    assert_eq!(counts["aborted"].as_u64(), Some(aborted as u64), "{counts}");
    assert_eq!(counts["matched"].as_u64(), Some(aborted as u64), "{counts}");
    // Every request the client made went through the proxy.
    assert!(
        counts["passed"].as_u64() >= Some(1300 - aborted as u64),
        "{counts}"
    );
    // After revert: every answer real, nothing left in the namespace.
    assert!(!has_redirect(&s.web), "{}", nat_rules(&s.web));
    assert_eq!(proxies(&s.web), 0, "a proxy is still running");
    let after = many(s.addr, "/api/x", 200);
    assert!(
        after.iter().all(|a| a
            .as_ref()
            .is_some_and(|a| a.status == 200 && a.body.trim() == API_BODY)),
        "after revert not every answer is real"
    );
}

/// busybox httpd answers POST to a file with 501 (it only runs CGI for POST), quickly:
/// the delay is measured on that answer all the same.
#[test]
fn delay_holds_only_posts() {
    let Some(s) = setup("http-delay") else { return };
    let get_before = p50(&timings(s.addr, "GET", &[], 20));
    let post_before = p50(&timings(s.addr, "POST", &[], 20));
    let run = s.start(Run::experiment(
        &s.experiment("match: {method: POST}, delay: 500ms", "30s"),
    ));
    let post = p50(&timings(s.addr, "POST", &[], 10));
    let get = p50(&timings(s.addr, "GET", &[], 20));
    run.interrupt();
    run.wait();
    let added = post - post_before;
    assert!(
        (450.0..=550.0).contains(&added),
        "POST p50 rose by {added:.1}ms, expected 500ms ± 10%"
    );
    assert!(
        get < get_before + 20.0,
        "GET p50 {get:.1}ms, before {get_before:.1}ms"
    );
    assert!(!has_redirect(&s.web));
}

#[test]
fn replace_is_seen_exactly_by_the_client() {
    let Some(s) = setup("http-replace") else {
        return;
    };
    let run = s.start(Run::experiment(&s.experiment(
        "match: {headers: {X-Chaos: \"on\"}}, replace: {status: 418, body: \"teapot from faultline\"}",
        "30s",
    )));
    let replaced = request(s.addr, "GET", "/health", &["X-Chaos: on"]).unwrap();
    let plain = request(s.addr, "GET", "/health", &[]).unwrap();
    run.interrupt();
    run.wait();
    assert_eq!(replaced.status, 418);
    assert_eq!(replaced.body, "teapot from faultline");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body.trim(), HEALTH_BODY);
    assert!(!has_redirect(&s.web));
}

/// A connection opened before the fault is not redirected (its conntrack entry predates
/// the rule) and is answered by the server after the revert.
#[test]
fn a_connection_opened_before_the_fault_works_after_revert() {
    let Some(s) = setup("http-keep") else { return };
    let mut early = TcpStream::connect(s.addr).unwrap();
    early
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let run = s.start(Run::experiment(
        &s.experiment("abort: {status: 503}", "30s"),
    ));
    assert_eq!(request(s.addr, "GET", "/health", &[]).unwrap().status, 503);
    run.interrupt();
    run.wait().expect(130);
    assert!(!has_redirect(&s.web));
    send(&mut early, "GET", "/health", &[]).unwrap();
    let a = read_answer(&mut early).unwrap();
    assert_eq!((a.status, a.body.trim()), (200, HEALTH_BODY));
}

/// faultline killed mid-fault: the proxy fails open by itself (it removes its own
/// redirect and forwards untouched), so requests are real within a second with no
/// dead-man's switch; `recover` then stops the proxy and finds nothing left.
#[test]
fn sigkill_fails_open_within_a_second_and_recover_leaves_nothing() {
    let Some(s) = setup("http-kill") else { return };
    let state = StateDir::new();
    let exp = s.experiment("abort: {status: 503}", "60s");
    let run = s.start(Run::experiment(&exp).state(&state).no_dead_mans_switch());
    assert_eq!(request(s.addr, "GET", "/health", &[]).unwrap().status, 503);
    run.signal(nix::sys::signal::Signal::SIGKILL);
    let killed = Instant::now();
    run.wait();
    let mut first_real = None;
    let mut last = Vec::new();
    while killed.elapsed() < Duration::from_secs(3) {
        let a = request_within(s.addr, "GET", "/health", &[], Duration::from_millis(300));
        if a.as_ref()
            .is_ok_and(|a| a.status == 200 && a.body.trim() == HEALTH_BODY)
        {
            first_real = Some(killed.elapsed());
            break;
        }
        last.push((killed.elapsed(), a));
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = first_real.unwrap_or_else(|| {
        panic!(
            "no real answer within 3 s of SIGKILL: last {last:?}, proxies {}, rules {}",
            proxies(&s.web),
            nat_rules(&s.web)
        )
    });
    eprintln!("first real answer {took:?} after SIGKILL; before it: {last:?}");
    assert!(
        took < Duration::from_secs(1),
        "traffic flowed again only after {took:?}: {last:?}"
    );
    // From then on every request is real.
    let after = many(s.addr, "/health", 100);
    assert!(
        after
            .iter()
            .all(|a| a.as_ref().is_some_and(|a| a.status == 200))
    );
    assert!(
        wait_until(Duration::from_secs(5), || !has_redirect(&s.web)),
        "the proxy did not remove its redirect"
    );
    state.recover();
    assert!(!has_redirect(&s.web), "{}", nat_rules(&s.web));
    assert_eq!(proxies(&s.web), 0, "recover left the proxy running");
    assert!(state.is_clean(), "the journal still has open entries");
}

/// `abort: {reset: true}`: the client's connection is reset with no answer.
#[test]
fn reset_closes_the_connection_without_an_answer() {
    let Some(s) = setup("http-reset") else { return };
    let run = s.start(Run::experiment(
        &s.experiment("match: {path: /api/*}, abort: {reset: true}", "30s"),
    ));
    let api = request(s.addr, "GET", "/api/x", &[]);
    let health = request(s.addr, "GET", "/health", &[]).unwrap();
    run.interrupt();
    run.wait().expect(130);
    let e = api.expect_err("an answer came through a reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}");
    assert_eq!((health.status, health.body.trim()), (200, HEALTH_BODY));
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A 50 MB file passes through the proxy intact and streamed: the proxy's resident
/// memory does not grow by the file's size.
#[test]
fn a_large_download_arrives_intact_and_is_streamed() {
    let Some(s) = setup("http-large") else { return };
    docker_ok(&[
        "exec",
        &s.web,
        "dd",
        "if=/dev/urandom",
        "of=/www/big",
        "bs=1048576",
        "count=50",
    ]);
    let fetch = || -> Vec<u8> {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        send(&mut c, "GET", "/big", &[]).unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        all.split_off(at)
    };
    let before = fetch();
    assert_eq!(before.len(), 50 * 1024 * 1024);
    let run = s.start(Run::experiment(
        &s.experiment("match: {path: /api/*}, abort: {status: 503}", "30s"),
    ));
    let pid = host_processes("\0http-proxy\0")
        .into_iter()
        .find(|p| {
            let ns = std::fs::read_link(format!(
                "/proc/{}/ns/net",
                inspect(&s.web, "{{.State.Pid}}")
            ));
            ns.is_ok_and(|ns| std::fs::read_link(p.join("ns/net")).is_ok_and(|n| n == ns))
        })
        .expect("the proxy runs")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let rss_before = rss_kib(&pid);
    let through = fetch();
    let rss_after = rss_kib(&pid);
    eprintln!("proxy RSS {rss_before} KiB before the download, {rss_after} KiB after");
    run.interrupt();
    run.wait().expect(130);
    assert!(
        through == before,
        "the file changed through the proxy ({} bytes)",
        through.len()
    );
    assert!(
        rss_after < rss_before + 8 * 1024,
        "the proxy's RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// What is not HTTP (here a TLS record header) is passed through as raw TCP: the
/// server's own answer to it arrives byte for byte, the fault's 503 never.
#[test]
fn what_is_not_http_passes_as_raw_tcp() {
    let Some(s) = setup("http-raw") else { return };
    let exchange = || -> String {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"\x16\x03\x01\x00\x05hello\r\n\r\n").unwrap();
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        // Byte for byte but the server's clock.
        String::from_utf8_lossy(&all)
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let direct = exchange();
    let run = s.start(Run::experiment(&s.experiment("abort: {status: 503}", "30s")).json_report());
    let through = exchange();
    assert_eq!(request(s.addr, "GET", "/health", &[]).unwrap().status, 503);
    run.interrupt();
    let out = run.wait();
    out.expect(130);
    assert!(direct.starts_with("HTTP/1.1 400"), "{direct}");
    assert_eq!(
        through, direct,
        "the server's answer changed through the proxy"
    );
    let counts = &out.report()["faults"][0]["effects"]["http"];
    assert_eq!(counts["not_http"].as_u64(), Some(1), "{counts}");
    assert_eq!(counts["aborted"].as_u64(), Some(1), "{counts}");
}

/// A server listening on the container's own address only (not loopback) is reached at
/// the connection's original destination.
#[test]
fn a_server_bound_to_its_address_only_is_reached() {
    let Some(s) = setup("http-bound") else { return };
    let ip = s.addr.ip().to_string();
    docker_ok(&[
        "exec",
        &s.web,
        "httpd",
        "-p",
        &format!("{ip}:8080"),
        "-h",
        "/www",
    ]);
    let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
    assert!(wait_until(Duration::from_secs(5), || request(
        addr,
        "GET",
        "/health",
        &[]
    )
    .is_ok()));
    let exp = Experiment::new("http")
        .on(&s.fleet)
        .fault("http: {port: 8080, match: {path: /api/*}, abort: {status: 503}, duration: 30s}");
    let run = s.start(Run::experiment(&exp));
    let api = request(addr, "GET", "/api/x", &[]).unwrap();
    let health = request(addr, "GET", "/health", &[]).unwrap();
    run.interrupt();
    run.wait().expect(130);
    assert_eq!(api.status, 503);
    assert_eq!((health.status, health.body.trim()), (200, HEALTH_BODY));
}

/// A protocol switch the server accepts (`Connection: upgrade`, as a WebSocket starts)
/// goes on as raw TCP through the proxy: what the server sends after its 101 arrives.
/// The server is busybox `nc`, answering 101 and a line once the request is in.
#[test]
fn an_upgraded_connection_goes_on_as_raw_tcp() {
    let Some(s) = setup("http-upgrade") else {
        return;
    };
    docker_ok(&[
        "exec",
        "-d",
        &s.web,
        "sh",
        "-c",
        "(sleep 2; printf 'HTTP/1.1 101 Switching Protocols\\r\\nConnection: Upgrade\\r\\nUpgrade: echo\\r\\n\\r\\nafter-upgrade\\n'; sleep 3) | nc -l -p 8081",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let exp = Experiment::new("http")
        .on(&s.fleet)
        .fault("http: {port: 8081, match: {path: /api/*}, abort: {status: 503}, duration: 30s}");
    let run = s.start(Run::experiment(&exp));
    let addr: SocketAddr = format!("{}:8081", s.addr.ip()).parse().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("after-upgrade") {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    run.interrupt();
    run.wait().expect(130);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("after-upgrade"), "{text}");
}
