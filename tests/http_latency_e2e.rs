//! The http probe's latency is the time to the whole response, through the binary and the
//! JSON report (issue 18): a body trickled over ~1 s fails `max_latency: 300ms` although
//! the headers come at once, and the report keeps the time to first byte apart.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::*;

/// Answers every request with its head at once, then 10 chunks of 1 KiB 100 ms apart.
fn trickling_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let chunk = [b'x'; 1024];
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        10 * chunk.len()
                    )
                    .as_bytes(),
                );
                let _ = stream.flush();
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/big")
}

/// What a client that reads the whole body measures (the independent check).
fn full_download(url: &str) -> Duration {
    let addr = url.trim_start_matches("http://").trim_end_matches("/big");
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert!(all.len() > 10 * 1024);
    start.elapsed()
}

#[test]
fn a_slow_body_fails_max_latency_and_the_report_keeps_ttfb_apart() {
    assert!(
        docker_available(),
        "this test needs the Docker engine (`docker info` failed)"
    );
    let url = trickling_server();
    let took = full_download(&url);
    assert!(
        took >= Duration::from_millis(900),
        "the server trickles: {took:?}"
    );

    let mut fleet = Fleet::new("latency");
    fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "slow.yaml",
        &format!(
            "version: 1\nname: slow-body\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nsteady_state:\n  - name: download\n    http: {{url: \"{url}\", max_latency: 300ms, timeout: 5s}}\nfaults:\n  - pause: {{duration: 100ms}}\n",
            fleet.label()
        ),
    );
    // Steady state cannot hold: exit 3.
    let r = Run::new(["run"])
        .arg(&file)
        .json_on_stdout()
        .expect_report(3);
    assert_eq!(r["verdict"], "not_steady");
    let probe = &r["phases"]["before"]["probes"][0];
    assert_eq!(probe["passed"], false);
    let detail = probe["detail"].as_str().unwrap();
    assert!(detail.ends_with("over max_latency 300ms"), "{detail}");
    let ttfb = probe["ttfb_ms"].as_u64().expect("ttfb_ms in the report");
    assert!(ttfb < 300, "the head came at once: {ttfb}ms");
    let ms: u64 = detail
        .strip_prefix("took ")
        .and_then(|d| d.split("ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(
        ms + 100 >= took.as_millis() as u64,
        "latency {ms}ms is the whole download ({took:?} measured by a plain client)"
    );
    assert!(
        r["faults"].as_array().unwrap().is_empty(),
        "nothing was injected"
    );
}
