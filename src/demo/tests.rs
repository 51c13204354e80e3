use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn local_listener() -> (TcpListener, SocketAddr) {
    let (listener, addr) = crate::test_support::local_listener().await;
    (listener, addr)
}

async fn start_web(name: &str) -> SocketAddr {
    let (listener, addr) = local_listener().await;
    tokio::spawn(serve::serve_on(listener, name.to_string()));
    addr
}

async fn start_balancer(backends: Vec<String>, try_timeout: Duration) -> SocketAddr {
    let (listener, addr) = local_listener().await;
    tokio::spawn(balance::balance_on(listener, backends, try_timeout));
    addr
}

/// Sends raw bytes and returns everything the server answers until it closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn serve_answers_get_and_head_and_refuses_other_methods() {
    let addr = start_web("web-x").await;
    let (status, body) = http::get(addr, "/anything", TIMEOUT).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from web-x\n"));

    let head = raw(addr, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 17\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD must have no body: {head}");

    let post = raw(addr, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
}

#[tokio::test]
async fn serve_binds_its_port_and_handles_concurrent_clients() {
    let port = free_port().unwrap();
    tokio::spawn(serve::serve(port, "web-p".into()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + TIMEOUT;
    while http::get(addr, "/", TIMEOUT).await.is_err() {
        assert!(Instant::now() < deadline, "serve never listened on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A client that sends half a request must not hold up the others.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET / HT").await.unwrap();
    let requests = (0..20).map(|_| http::get(addr, "/", TIMEOUT));
    for result in futures::future::join_all(requests).await {
        assert_eq!(result.unwrap(), (200, "hello from web-p\n".to_string()));
    }
}

#[tokio::test]
async fn balance_spreads_requests_round_robin() {
    let mut backends = Vec::new();
    for name in ["web-1", "web-2", "web-3"] {
        backends.push(start_web(name).await.to_string());
    }
    let lb = start_balancer(backends, Duration::from_millis(300)).await;
    let mut bodies = Vec::new();
    for _ in 0..6 {
        let (status, body) = http::get(lb, "/", TIMEOUT).await.unwrap();
        assert_eq!(status, 200);
        bodies.push(body);
    }
    let want: Vec<String> = ["web-1", "web-2", "web-3", "web-1", "web-2", "web-3"]
        .iter()
        .map(|n| format!("hello from {n}\n"))
        .collect();
    assert_eq!(bodies, want);
}

#[tokio::test]
async fn balance_skips_a_frozen_backend_within_the_timeout() {
    // Bound and listening but never accepting: the kernel completes the handshake and
    // nothing ever answers, just like a paused container.
    let (frozen, frozen_addr) = local_listener().await;
    let web = start_web("web-ok").await;
    let try_timeout = Duration::from_millis(200);
    let lb = start_balancer(vec![frozen_addr.to_string(), web.to_string()], try_timeout).await;
    for i in 0..4 {
        let started = Instant::now();
        let (status, body) = http::get(lb, "/", TIMEOUT).await.unwrap();
        let took = started.elapsed();
        assert_eq!((status, body.as_str()), (200, "hello from web-ok\n"));
        assert!(took < Duration::from_secs(1), "request {i} took {took:?}");
        if i % 2 == 0 {
            // This request tried the frozen backend first.
            assert!(took >= try_timeout, "request {i} took only {took:?}");
        }
    }
    drop(frozen);
}

#[tokio::test]
async fn balance_answers_502_when_every_backend_fails() {
    let (_frozen, frozen_addr) = local_listener().await;
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let backends = vec![frozen_addr.to_string(), closed.to_string()];
    let lb = start_balancer(backends, Duration::from_millis(100)).await;
    let (status, body) = http::get(lb, "/", TIMEOUT).await.unwrap();
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn balance_forwards_the_body_and_closes_the_backend_connection() {
    // Answers with the exact request it received.
    let (listener, echo) = local_listener().await;
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut buf, head_len) = http::read_head(&mut s).await.unwrap();
        while buf.len() < head_len + 5 {
            let mut more = [0u8; 64];
            let n = s.read(&mut more).await.unwrap();
            buf.extend_from_slice(&more[..n]);
        }
        let seen = String::from_utf8(buf).unwrap();
        s.write_all(&http::response("200 OK", "", &seen, true))
            .await
            .unwrap();
    });
    let lb = start_balancer(vec![echo.to_string()], Duration::from_secs(2)).await;
    let answer = raw(
        lb,
        b"POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    let (_, seen) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        seen.starts_with("POST /x HTTP/1.1\r\nHost: a\r\n"),
        "{seen}"
    );
    assert!(!seen.contains("keep-alive"), "{seen}");
    assert!(seen.ends_with("Connection: close\r\n\r\nhello"), "{seen}");
}

#[test]
fn balance_args_parse() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BalanceArgs,
    }
    let cli = Cli::parse_from([
        "x",
        "--listen",
        "0.0.0.0:8080",
        "--backend",
        "faultline-demo-web-1:8080",
        "--backend",
        "faultline-demo-web-2:8080",
    ]);
    assert_eq!(cli.args.backend.len(), 2);
    assert_eq!(cli.args.try_timeout_ms, 300);
    assert!(Cli::try_parse_from(["x"]).is_err(), "a backend is required");
}

#[test]
fn parse_ldd_keeps_resolved_paths_and_the_loader() {
    let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
               \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
               \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
               \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
    let paths = parse_ldd(out).unwrap();
    let want: Vec<PathBuf> = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(paths, want);
    assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
}

#[test]
fn rootfs_holds_the_binary_its_libraries_and_tmp() {
    let exe = std::env::current_exe().unwrap();
    let archive = rootfs_tar(&exe).unwrap();
    let mut names = Vec::new();
    for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
        let entry = entry.unwrap();
        let mode = entry.header().mode().unwrap();
        let kind = entry.header().entry_type();
        // Docker's importer accepts only plain entries (no GNU sparse files).
        assert!(kind.is_file() || kind.is_dir(), "{kind:?}");
        names.push((entry.path().unwrap().display().to_string(), mode));
    }
    let has = |name: &str| names.iter().any(|(n, _)| n.trim_end_matches('/') == name);
    assert!(has("faultline"), "{names:?}");
    assert!(has("etc/nsswitch.conf"), "{names:?}");
    assert!(names.contains(&("tmp/".into(), 0o1777)) || names.contains(&("tmp".into(), 0o1777)));
    for lib in shared_libraries(&exe).unwrap() {
        let relative = lib.strip_prefix("/").unwrap().display().to_string();
        assert!(has(&relative), "{relative} missing from {names:?}");
    }
}

#[test]
fn experiment_is_valid_and_points_at_the_balancer() {
    let url = "http://127.0.0.1:34567/";
    let yaml = experiment_for(url);
    assert!(!yaml.contains(URL_PLACEHOLDER));
    assert!(yaml.contains(url));
    let loaded =
        crate::experiment::load_experiment_str("demo.yaml", &yaml, &Default::default(), &|_| None);
    if let Err(diagnostics) = &loaded {
        let lines: Vec<String> = diagnostics.iter().map(|d| d.headline()).collect();
        panic!("the demo experiment is invalid:\n{}", lines.join("\n"));
    }
}

/// Docker, or `None` with the skip recorded (a failure under `CI=true`).
async fn docker_or_skip() -> Option<Docker> {
    use crate::test_support::skip::{Skip, skip};
    if !crate::test_support::require_docker() {
        return None;
    }
    let connected = match Docker::connect_with_defaults() {
        Ok(docker) => docker.negotiate_version().await,
        Err(e) => Err(e),
    };
    match connected {
        Ok(docker) => Some(docker),
        Err(e) => {
            skip(Skip::Missing, &format!("cannot connect to Docker: {e}"));
            None
        }
    }
}

/// The faultline binary next to this test binary (`target/debug/faultline`), or the one
/// in `FAULTLINE_DEMO_BINARY`. It is built with the tests (`cargo test` builds the
/// binaries of the package), so its absence is a broken build, not a skip.
fn demo_binary() -> PathBuf {
    let binary = match std::env::var_os("FAULTLINE_DEMO_BINARY") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent()
                .and_then(|d| d.parent())
                .expect("target/debug")
                .join("faultline")
        }
    };
    assert!(
        binary.is_file(),
        "{} does not exist (cargo build first)",
        binary.display()
    );
    let help = std::process::Command::new(&binary)
        .args(["demo-serve", "--help"])
        .output();
    assert!(
        help.is_ok_and(|o| o.status.success()),
        "{} has no `demo-serve` subcommand",
        binary.display()
    );
    binary
}

async fn demo_leftovers(docker: &Docker) -> Vec<String> {
    let (containers, networks) = list_demo_objects(docker).await.unwrap();
    let containers = containers
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default());
    let networks = networks.into_iter().filter_map(|n| n.name);
    containers.chain(networks).collect()
}

async fn check_running_demo(docker: &Docker, env: &Environment) {
    let addr = SocketAddr::from(([127, 0, 0, 1], env.port));
    let (status, body) = http::get(addr, "/", TIMEOUT).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("hello from web-"), "{body}");

    let paused = "faultline-demo-web-2";
    docker.pause_container(paused).await.unwrap();
    // Six requests: every replica is first in line twice.
    for i in 0..6 {
        let started = Instant::now();
        let (status, body) = http::get(addr, "/", TIMEOUT).await.unwrap();
        let took = started.elapsed();
        assert_eq!(status, 200, "request {i} while paused: {body}");
        assert_ne!(body, "hello from web-2\n");
        assert!(took < Duration::from_secs(1), "request {i} took {took:?}");
    }
    docker.unpause_container(paused).await.unwrap();
    let (status, _) = http::get(addr, "/", TIMEOUT).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn docker_demo_keeps_answering_while_a_replica_is_paused() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let binary = demo_binary();
    let started = Instant::now();
    let env = Environment::start(&docker, &binary).await.unwrap();
    eprintln!(
        "demo started in {:?} at {}: {:?}",
        started.elapsed(),
        env.url(),
        env.containers()
    );
    assert_eq!(env.containers().len(), 4);
    assert!(env.experiment_yaml().contains(&env.url()));

    // Tear down even when a check fails, then report the failure.
    let checks = AssertUnwindSafe(check_running_demo(&docker, &env))
        .catch_unwind()
        .await;
    let teardown = env.teardown().await;
    let leftovers = demo_leftovers(&docker).await;
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
    teardown.unwrap();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}
