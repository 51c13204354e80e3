//! The skip recorder of `tests/support`, for the library's own tests that need Docker: a
//! test that cannot run records why (listed by `scripts/test.sh`, a failure under
//! `CI=true`) instead of passing in silence.

#![allow(dead_code, unreachable_pub)]

pub fn root() -> std::path::PathBuf {
    env!("CARGO_MANIFEST_DIR").into()
}

#[path = "../tests/support/skip.rs"]
pub mod skip;

/// Whether the Docker engine answers; when it does not, the skip is recorded.
pub fn require_docker() -> bool {
    let ok = std::process::Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip::skip(
            skip::Skip::Missing,
            "the Docker engine does not answer (`docker info` failed)",
        );
    }
    ok
}

/// A value of `T` from JSON, for tests that build a model piece inline.
pub fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A TCP listener on a free loopback port, and its address.
pub async fn local_listener() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An experiment loaded from YAML text as `faultline run` loads a file (variables
/// substituted, validated), with no process environment.
pub fn experiment(yaml: &str) -> crate::experiment::model::Experiment {
    let none = crate::experiment::VarOverrides::default();
    crate::experiment::load_experiment_str("t.yaml", yaml, &none, &|_| None)
        .unwrap()
        .experiment
}

/// One HTTP/1.1 request as a test server read it: the head (request line and headers,
/// without the blank line) and the body.
pub struct Request {
    pub head: String,
    pub body: String,
}

impl Request {
    /// The value of header `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one request: up to the end of its head, then as much body as `Content-Length`
/// says. `None` when the client closes the connection (or it fails) before that.
pub async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let request = Request {
                head: head.to_string(),
                body: body.to_string(),
            };
            let length = request
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            if request.body.len() >= length {
                return Some(request);
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// A loopback server for tests: each connection's request is read, then `answer` gets
/// the connection and the request. Returns the server's address.
pub async fn serve<F, Fut>(answer: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = local_listener().await;
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                if let Some(request) = read_request(&mut stream).await {
                    answer(stream, request).await;
                }
            });
        }
    });
    addr
}
