//! The transparent HTTP/1.1 proxy of the `http` fault (`faultline http-proxy`, hidden).
//!
//! Started on the host inside the target's network namespace; an iptables `nat
//! PREROUTING ... REDIRECT` rule sends the connections arriving at the target's port to
//! it, and it forwards each to the real server at the connection's original destination
//! (127.0.0.1:PORT when it cannot be told): connections made from inside the namespace
//! pass OUTPUT, never PREROUTING, so they do not loop back into the proxy. Requests that match are delayed, aborted or their answers replaced; the
//! rest are forwarded untouched, bodies streamed, keep-alive kept.
//!
//! It fails open by itself: when faultline dies (its parent-death signal, or its parent
//! gone), and at its own deadline, it deletes its own rules and only forwards from then
//! on, so that new connections reach the server directly at once; the dead-man's switch
//! (`recover`) then finds the rule gone and stops the proxy.
//!
//! On Kubernetes it runs as PID 1 of an ephemeral container (`--parent 0`): it has no
//! parent to watch, so the redirect is removed when faultline dies by the network
//! helper's exit script (at its lifetime's end), by the dead-man's switch, and by the
//! proxy's own deadline, not within a second as on Docker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::report::HttpCounts;

/// What the proxy does to the requests it sees, as passed on its command line (JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// 0.0..=1.0
    pub percent: f64,
    pub abort_status: Option<u16>,
    #[serde(default)]
    pub reset: bool,
    pub delay_ms: Option<u64>,
    pub replace_status: Option<u16>,
    #[serde(default)]
    pub replace_headers: BTreeMap<String, String>,
    pub replace_body: Option<String>,
}

/// Whether `text` matches `glob` (`*` any run of characters, `?` one character).
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while gi < g.len() && g[gi] == '*' {
        gi += 1;
    }
    gi == g.len()
}

impl Rules {
    /// Whether a request with this method, path and headers meets the conditions
    /// (the percentage aside).
    pub fn meets(&self, method: &str, path: &str, headers: &hyper::HeaderMap) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            if !glob_match(p, path) {
                return false;
            }
        }
        self.headers.iter().all(|(k, v)| {
            headers
                .get_all(k.as_str())
                .iter()
                .any(|h| h.as_bytes() == v.as_bytes())
        })
    }
}

#[derive(Default)]
struct Counters {
    matched: AtomicU64,
    aborted: AtomicU64,
    delayed: AtomicU64,
    replaced: AtomicU64,
    passed: AtomicU64,
    not_http: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> HttpCounts {
        HttpCounts {
            matched: self.matched.load(Ordering::Relaxed),
            aborted: self.aborted.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            replaced: self.replaced.load(Ordering::Relaxed),
            passed: self.passed.load(Ordering::Relaxed),
            not_http: self.not_http.load(Ordering::Relaxed),
        }
    }
}

/// Writes the counters where revert reads them (whole, through a rename).
fn write_counters(path: &std::path::Path, c: &Counters) {
    let tmp = path.with_extension("tmp");
    if let Ok(text) = serde_json::to_vec(&c.snapshot()) {
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// Reads the counters a proxy wrote.
pub fn read_counters(path: &std::path::Path) -> Option<HttpCounts> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The mark the proxy puts on its own connections to the servers, so that an outbound
/// redirect (nat OUTPUT, which they pass) leaves them alone instead of looping them back
/// into the proxy.
pub const UPSTREAM_MARK: u32 = 0x0fa1_7417;

/// Which connections a redirect takes to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Arriving at the target's `port` (nat PREROUTING).
    Inbound,
    /// Made by the target to `port` on other hosts (nat OUTPUT), but the proxy's own.
    Outbound,
}

/// The `nat` rule spec that redirects connections to `port` to `proxy_port`, as after
/// `-I`/`-D`. `to`: the servers an outbound redirect is limited to (IPv4 networks; empty:
/// every address but the target's own loopback).
pub fn redirect_spec(
    way: Way,
    port: u16,
    proxy_port: u16,
    marker: &str,
    to: &[String],
) -> Vec<String> {
    let mut v: Vec<String> = match way {
        Way::Inbound => vec!["PREROUTING".into()],
        Way::Outbound => vec!["OUTPUT".into()],
    };
    v.extend(["-p", "tcp", "--dport"].map(String::from));
    v.push(port.to_string());
    if way == Way::Outbound {
        if to.is_empty() {
            v.extend(["!", "-d", "127.0.0.0/8"].map(String::from));
        } else {
            v.extend(["-d".to_string(), to.join(",")]);
        }
        v.extend(["-m", "mark", "!", "--mark"].map(String::from));
        v.push(format!("{UPSTREAM_MARK:#x}"));
    }
    v.extend(
        [
            "-m",
            "comment",
            "--comment",
            marker,
            "-j",
            "REDIRECT",
            "--to-ports",
        ]
        .map(String::from),
    );
    v.push(proxy_port.to_string());
    v
}

/// `iptables -w -t nat OP SPEC`.
pub fn nat(op: &str, spec: &[String]) -> Vec<String> {
    let mut v = ["iptables", "-w", "-t", "nat", op]
        .map(String::from)
        .to_vec();
    v.extend(spec.iter().cloned());
    v
}

/// `iptables -w -t nat -S`: the whole nat table.
pub fn list_nat() -> Vec<String> {
    ["iptables", "-w", "-t", "nat", "-S"]
        .map(String::from)
        .to_vec()
}

/// The rules carrying `marker` in a `-S` listing, as after `-D` (a rule given several
/// destinations was added as one rule per destination).
pub fn own_rules(listing: &str, marker: &str) -> Vec<Vec<String>> {
    let needle = format!("--comment {marker} ");
    listing
        .lines()
        .filter(|l| l.contains(&needle) && l.starts_with("-A "))
        .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
        .collect()
}

/// A shell script that deletes every nat rule carrying `marker`: the Kubernetes network
/// helper runs it as it ends. The marker is split, so that stopping the proxy by its
/// marker never takes the helper's shell for it (one process namespace with
/// `shareProcessNamespace`).
pub fn delete_rules_script(marker: &str) -> String {
    let (a, b) = marker.split_at(marker.len() / 2);
    format!(
        "m1={a}; m2={b}; iptables -w -t nat -S 2>/dev/null | grep -F -e \"--comment $m1$m2 \" | while read -r _ rule; do iptables -w -t nat -D $rule; done"
    )
}

/// Deletes every nat rule carrying `marker`, from inside the namespace the proxy runs in.
fn delete_own_rules(marker: &str) {
    let run = |argv: &[String]| {
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
    };
    for _ in 0..3 {
        let Ok(out) = run(&list_nat()) else { return };
        let rules = own_rules(&String::from_utf8_lossy(&out.stdout), marker);
        if rules.is_empty() {
            return;
        }
        for r in rules {
            let _ = run(&nat("-D", &r));
        }
    }
}

/// Where a redirected connection was going: its original destination (the server on
/// the address the client asked for; the proxy's own connection to it leaves through
/// OUTPUT, never PREROUTING, so it does not loop back), else 127.0.0.1:`port`.
fn upstream_of(client: &tokio::net::TcpStream, port: u16) -> std::net::SocketAddr {
    let original = nix::sys::socket::getsockopt(client, nix::sys::socket::sockopt::OriginalDst)
        .ok()
        .map(|sa| {
            std::net::SocketAddr::from((
                std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
                u16::from_be(sa.sin_port),
            ))
        });
    match original {
        Some(a) if a.port() == port => a,
        _ => std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Connects to the server, marked as the proxy's own (so an outbound redirect lets it
/// pass); a connection that cannot be marked is not made, as it could loop back.
async fn connect_upstream(to: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Mark, &UPSTREAM_MARK)
        .map_err(std::io::Error::from)?;
    socket.connect(to).await
}

/// What `doctor` checks for the `http` fault, in a scratch network namespace of its own
/// (the host's is never touched): the nat table takes both redirects, a redirected
/// connection reaches a listener that finds its original destination, and a connection
/// carrying [`UPSTREAM_MARK`] passes the outbound redirect (so the proxy cannot loop).
pub fn self_check() -> Result<String, String> {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("cannot make a scratch network namespace: {e} (run as root)"))?;
        let run = |argv: &[String]| -> Result<(), String> {
            // A child started from this thread lives in its namespace.
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("cannot run `{}`: {e}", argv[0]))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{}`: {}",
                    argv.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(&["ip", "link", "set", "lo", "up"].map(String::from))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let proxy_port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let server: std::net::SocketAddr = ([127, 0, 0, 2], 81).into();
        run(&nat(
            "-I",
            &redirect_spec(Way::Inbound, 81, proxy_port, "faultline-doctor", &[]),
        ))?;
        run(&nat(
            "-I",
            &redirect_spec(
                Way::Outbound,
                81,
                proxy_port,
                "faultline-doctor",
                &["127.0.0.2/32".into()],
            ),
        ))?;
        let timeout = Duration::from_secs(2);
        let _client = std::net::TcpStream::connect_timeout(&server, timeout)
            .map_err(|e| format!("a redirected connection did not reach the listener: {e}"))?;
        let (accepted, _) = listener.accept().map_err(|e| e.to_string())?;
        let original = nix::sys::socket::getsockopt(&accepted, nix::sys::socket::sockopt::OriginalDst)
            .map_err(|e| format!("SO_ORIGINAL_DST: {e} (nf_conntrack)"))?;
        let original = std::net::SocketAddr::from((
            std::net::Ipv4Addr::from(u32::from_be(original.sin_addr.s_addr)),
            u16::from_be(original.sin_port),
        ));
        if original != server {
            return Err(format!(
                "the original destination reads {original}, not {server}"
            ));
        }
        // The proxy's own connection is not redirected: nothing listens at the server.
        if marked_connect(server)? {
            return Err("a connection carrying the proxy's mark was redirected too: the outbound proxy would loop (xt_mark)".into());
        }
        Ok("the nat table takes the REDIRECT rules (PREROUTING, OUTPUT with a mark), a redirected connection's original destination is read back, the proxy's marked connections pass".to_string())
    })
    .join()
    .unwrap_or_else(|_| Err("the check panicked".into()))
}

/// A blocking connect marked as the proxy's own: whether it was accepted (false: refused).
fn marked_connect(to: std::net::SocketAddr) -> Result<bool, String> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
    };
    let std::net::SocketAddr::V4(v4) = to else {
        return Err("IPv4 only".into());
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| e.to_string())?;
    setsockopt(&fd, sockopt::Mark, &UPSTREAM_MARK)
        .map_err(|e| format!("cannot mark the proxy's connections (SO_MARK): {e}"))?;
    match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4)) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(format!("a marked connection failed: {e}")),
    }
}

/// Whether a connection whose first byte is `b` speaks HTTP/1.x: a request starts with
/// its method, upper-case letters (a TLS record starts with 0x16).
pub fn looks_like_http(b: u8) -> bool {
    b.is_ascii_uppercase()
}

type Body = BoxBody<Bytes, hyper::Error>;

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn streamed(b: Incoming) -> Body {
    b.boxed()
}

/// Why the proxy ends a client's connection.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the fault resets this connection")]
    Reset,
}

fn answer(status: u16, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    r
}

struct Shared {
    rules: Rules,
    counters: Counters,
    /// Set once the proxy fails open: every request is forwarded untouched.
    open: AtomicBool,
    upstream: u16,
}

/// Serves one client connection: forwards its requests over one connection to the server.
async fn connection(mut stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // A duplicate of the client's socket, to turn its close into a reset.
    let raw = std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned().ok();
    let Ok(mut up) = connect_upstream(upstream_of(&stream, shared.upstream)).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    // What is not HTTP/1.1 (TLS, a protocol where the server speaks first) is passed
    // through as raw TCP, not inspected.
    let mut first = [0u8; 1];
    let http = tokio::select! {
        n = stream.peek(&mut first) => matches!(n, Ok(1)) && looks_like_http(first[0]),
        _ = up.readable() => false,
    };
    if !http {
        shared.counters.not_http.fetch_add(1, Ordering::Relaxed);
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut up).await;
        return;
    }
    let Ok((sender, conn)) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake::<_, Incoming>(TokioIo::new(up))
        .await
    else {
        return;
    };
    tokio::spawn(conn.with_upgrades());
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (shared, sender) = (shared.clone(), sender.clone());
        let raw = raw.as_ref().and_then(|f| f.try_clone().ok());
        async move { handle(&shared, &sender, raw, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
}

type Sender = tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Incoming>>;

/// One request: forwarded untouched, or (when the rules match it) delayed, then aborted,
/// reset, or forwarded with its answer replaced. `raw` is the client's socket.
async fn handle(
    shared: &Shared,
    sender: &Sender,
    raw: Option<std::os::fd::OwnedFd>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let r = &shared.rules;
    let c = &shared.counters;
    let hit = !shared.open.load(Ordering::Relaxed)
        && r.meets(req.method().as_str(), req.uri().path(), req.headers())
        && rand::random::<f64>() < r.percent;
    if !hit {
        c.passed.fetch_add(1, Ordering::Relaxed);
        return forward(sender, req).await;
    }
    c.matched.fetch_add(1, Ordering::Relaxed);
    if let Some(ms) = r.delay_ms {
        c.delayed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if r.reset {
        c.aborted.fetch_add(1, Ordering::Relaxed);
        // With a zero linger the close that follows the service's error is a reset, not
        // an orderly end.
        if let Some(fd) = &raw {
            let _ = nix::sys::socket::setsockopt(
                fd,
                nix::sys::socket::sockopt::Linger,
                &libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            );
        }
        return Err(ProxyError::Reset);
    }
    if let Some(status) = r.abort_status {
        c.aborted.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(status, Bytes::new()));
    }
    let resp = sender.lock().await.send_request(req).await?;
    if r.replace_status.is_none() && r.replace_body.is_none() && r.replace_headers.is_empty() {
        return Ok(resp.map(streamed));
    }
    c.replaced.fetch_add(1, Ordering::Relaxed);
    replaced(r, resp).await
}

/// The server's answer with the rules' status, body and headers in place of its own.
async fn replaced(r: &Rules, resp: Response<Incoming>) -> Result<Response<Body>, ProxyError> {
    let (mut parts, body) = resp.into_parts();
    // The whole real body is read, so that the server's connection stays usable.
    let real = body.collect().await?.to_bytes();
    let body = match &r.replace_body {
        Some(b) => {
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.headers.remove(hyper::header::TRANSFER_ENCODING);
            Bytes::from(b.clone())
        }
        None => real,
    };
    if let Some(s) = r.replace_status {
        parts.status = StatusCode::from_u16(s).unwrap_or(parts.status);
    }
    for (k, v) in &r.replace_headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            parts.headers.insert(k, v);
        }
    }
    Ok(Response::from_parts(parts, full(body)))
}

/// Forwards a request untouched; a protocol switch (`Connection: upgrade`, a WebSocket)
/// the server accepts then goes on as raw TCP between the two.
async fn forward(
    sender: &Sender,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let client_side = req
        .headers()
        .contains_key(hyper::header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let mut resp = sender.lock().await.send_request(req).await?;
    if let (Some(client_side), StatusCode::SWITCHING_PROTOCOLS) = (client_side, resp.status()) {
        let server_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(c), Ok(s)) = (client_side.await, server_side.await) {
                let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
            }
        });
    }
    Ok(resp.map(streamed))
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Whether the proxy's parent (`parent`, faultline) has gone; never with `parent` 0.
fn orphan(parent: u32) -> bool {
    parent != 0 && nix::unistd::getppid().as_raw() as u32 != parent
}

/// What the hidden `faultline http-proxy` command is given.
pub struct ProxyArgs {
    pub listen: u16,
    pub upstream: u16,
    pub rules: Rules,
    pub until: u64,
    pub marker: String,
    /// faultline's PID, whose death makes the proxy fail open; 0: none to watch (PID 1 of
    /// a container, whose parent PID is 0).
    pub parent: u32,
    pub counters: std::path::PathBuf,
}

/// Runs the proxy until SIGTERM (revert) or its deadline. The body of `faultline
/// http-proxy`, started inside the target's network namespace.
pub fn run_proxy(a: ProxyArgs) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(a))
}

async fn serve(a: ProxyArgs) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    // faultline's death is told by SIGUSR1 (instead of the SIGKILL it was started with):
    // the proxy then fails open rather than dying with its redirect still in place.
    let mut orphaned = signal(SignalKind::user_defined1())?;
    if a.parent != 0 {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGUSR1)
            .map_err(std::io::Error::from)?;
    }
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", a.listen)).await?;
    let shared = Arc::new(Shared {
        rules: a.rules,
        counters: Counters::default(),
        open: AtomicBool::new(false),
        upstream: a.upstream,
    });
    // Its first counters say it listens.
    write_counters(&a.counters, &shared.counters);
    // Accepting never waits for anything else (iptables may wait for its lock).
    let accepting = shared.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, accepting.clone()));
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // Forwarding untouched at once, then the redirect removed off the async threads.
    let fail_open = |shared: &Shared, marker: &str| {
        if !shared.open.swap(true, Ordering::SeqCst) {
            let marker = marker.to_string();
            Some(tokio::task::spawn_blocking(move || {
                delete_own_rules(&marker);
            }))
        } else {
            None
        }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {
                write_counters(&a.counters, &shared.counters);
                if orphan(a.parent) {
                    fail_open(&shared, &a.marker);
                }
                if now_epoch() >= a.until {
                    if let Some(removing) = fail_open(&shared, &a.marker) {
                        let _ = removing.await;
                    }
                    break;
                }
            }
            _ = orphaned.recv() => {
                fail_open(&shared, &a.marker);
            }
            _ = term.recv() => break,
        }
    }
    write_counters(&a.counters, &shared.counters);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_zero_watches_no_parent() {
        assert!(!orphan(0), "PID 1 of a container: nothing to watch");
        let parent = nix::unistd::getppid().as_raw() as u32;
        assert!(!orphan(parent));
        assert!(orphan(parent + 1));
    }

    /// The Kubernetes helper's exit script, in a real shell with an `iptables` that
    /// prints a nat listing and logs what it is asked to delete: exactly the marker's
    /// rules go, each as listed.
    #[test]
    fn the_helpers_exit_script_deletes_exactly_the_markers_rules() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("deleted");
        let listing = "-P PREROUTING ACCEPT\n\
-A PREROUTING -p tcp -m tcp --dport 8080 -m comment --comment faultline-http-00aa -j REDIRECT --to-ports 45000\n\
-A PREROUTING -p tcp -m tcp --dport 8080 -m comment --comment faultline-http-00aab -j REDIRECT --to-ports 45001\n\
-A OUTPUT ! -d 127.0.0.0/8 -p tcp -m tcp --dport 80 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-00aa -j REDIRECT --to-ports 45000\n";
        std::fs::write(dir.path().join("listing"), listing).unwrap();
        let fake = format!(
            "#!/bin/sh\ncase \"$*\" in\n  '-w -t nat -S') cat {0}/listing ;;\n  *) echo \"$*\" >> {1} ;;\nesac\n",
            dir.path().display(),
            log.display()
        );
        let iptables = dir.path().join("iptables");
        std::fs::write(&iptables, fake).unwrap();
        std::fs::set_permissions(
            &iptables,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let script = delete_rules_script("faultline-http-00aa");
        assert!(!script.contains("faultline-http-00aa"), "{script}");
        let st = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("PATH", path)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "-w -t nat -D PREROUTING -p tcp -m tcp --dport 8080 -m comment --comment faultline-http-00aa -j REDIRECT --to-ports 45000\n\
-w -t nat -D OUTPUT ! -d 127.0.0.0/8 -p tcp -m tcp --dport 80 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-00aa -j REDIRECT --to-ports 45000\n"
        );
    }

    #[test]
    fn globs_match_paths() {
        assert!(glob_match("/api/*", "/api/x"));
        assert!(glob_match("/api/*", "/api/"));
        assert!(glob_match("/api/*", "/api/a/b"));
        assert!(!glob_match("/api/*", "/health"));
        assert!(!glob_match("/api/*", "/api"));
        assert!(glob_match("/a?c", "/abc"));
        assert!(!glob_match("/a?c", "/ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("/x/*/y", "/x/1/2/y"));
    }

    #[test]
    fn conditions_all_hold() {
        let r = Rules {
            method: Some("post".into()),
            path: Some("/api/*".into()),
            headers: [("X-Chaos".to_string(), "yes".to_string())].into(),
            percent: 1.0,
            ..Rules::default()
        };
        let mut h = hyper::HeaderMap::new();
        assert!(!r.meets("POST", "/api/a", &h));
        h.insert("x-chaos", "yes".parse().unwrap());
        assert!(r.meets("POST", "/api/a", &h));
        assert!(!r.meets("GET", "/api/a", &h));
        assert!(!r.meets("POST", "/other", &h));
        h.insert("x-chaos", "no".parse().unwrap());
        assert!(!r.meets("POST", "/api/a", &h));
    }

    #[test]
    fn tls_is_not_taken_for_http() {
        for m in [b"GET ", b"POST", b"HEAD", b"PUT "] {
            assert!(looks_like_http(m[0]));
        }
        // A TLS handshake record, an SSH banner is the server's, a binary protocol.
        assert!(!looks_like_http(0x16));
        assert!(!looks_like_http(0x00));
        assert!(!looks_like_http(b'g'));
    }

    #[test]
    fn the_redirect_is_added_and_deleted_the_same() {
        let s = redirect_spec(Way::Inbound, 80, 45000, "faultline-http-1", &[]);
        assert_eq!(
            nat("-I", &s).join(" "),
            "iptables -w -t nat -I PREROUTING -p tcp --dport 80 -m comment --comment faultline-http-1 -j REDIRECT --to-ports 45000"
        );
        assert_eq!(nat("-D", &s)[5..], nat("-I", &s)[5..]);
    }

    #[test]
    fn an_outbound_redirect_spares_the_proxy_and_loopback() {
        let any = redirect_spec(Way::Outbound, 8080, 45000, "faultline-http-2", &[]);
        assert_eq!(
            any.join(" "),
            "OUTPUT -p tcp --dport 8080 ! -d 127.0.0.0/8 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-2 -j REDIRECT --to-ports 45000"
        );
        let scoped = redirect_spec(
            Way::Outbound,
            80,
            45000,
            "faultline-http-3",
            &["10.0.0.5/32".into(), "10.1.0.0/16".into()],
        );
        assert_eq!(
            scoped.join(" "),
            "OUTPUT -p tcp --dport 80 -d 10.0.0.5/32,10.1.0.0/16 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-3 -j REDIRECT --to-ports 45000"
        );
    }

    #[test]
    fn own_rules_are_read_back_from_the_listing() {
        // iptables lists a rule added with two destinations as two rules, and the mark
        // as it normalizes it.
        let listing = "-P OUTPUT ACCEPT\n\
-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment faultline-http-9 -j REDIRECT --to-ports 4\n\
-A OUTPUT -d 10.0.0.5/32 -p tcp -m tcp --dport 80 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-1 -j REDIRECT --to-ports 45000\n\
-A OUTPUT -d 10.1.0.0/16 -p tcp -m tcp --dport 80 -m mark ! --mark 0xfa17417 -m comment --comment faultline-http-1 -j REDIRECT --to-ports 45000\n\
-A OUTPUT -d 10.1.0.0/16 -p tcp -m tcp --dport 80 -m comment --comment faultline-http-10 -j REDIRECT --to-ports 45000\n";
        let own = own_rules(listing, "faultline-http-1");
        assert_eq!(own.len(), 2);
        assert_eq!(own[0][..3], ["OUTPUT", "-d", "10.0.0.5/32"]);
        assert_eq!(own[1][2], "10.1.0.0/16");
    }
}
