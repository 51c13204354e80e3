//! `faultline demo-balance`: a round-robin HTTP proxy that fails over on slow backends.
//!
//! A paused backend still completes TCP handshakes (the kernel does that, not the frozen
//! process), so a connection error alone would not notice it: every attempt is bounded
//! by `try_timeout`, from name resolution to the end of the response. The response is
//! buffered whole before it is sent, so a backend that stalls mid-answer can still be
//! skipped.

use std::io;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::http;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body forwarded.
const MAX_BODY: usize = 1024 * 1024;
/// Largest response relayed.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Listens on `listener` and spreads requests round-robin over `backends` (`host:port`,
/// resolved on every attempt). Each attempt gets `try_timeout`; on a timeout or error
/// the next backend is tried, each at most once per request; when all fail the client
/// gets `502`.
pub(crate) async fn balance_on(
    listener: TcpListener,
    backends: Vec<String>,
    try_timeout: Duration,
) -> io::Result<()> {
    if backends.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at least one backend is needed",
        ));
    }
    let backends: Arc<[String]> = backends.into();
    let next = AtomicUsize::new(0);
    loop {
        let client = super::accept(&listener).await;
        let first = next.fetch_add(1, Ordering::Relaxed) % backends.len();
        let backends = Arc::clone(&backends);
        tokio::spawn(async move {
            if let Err(e) = proxy(client, &backends, first, try_timeout).await {
                tracing::debug!("demo-balance: {e}");
            }
        });
    }
}

async fn proxy(
    mut client: TcpStream,
    backends: &[String],
    first: usize,
    try_timeout: Duration,
) -> io::Result<()> {
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut client)).await {
        Ok(Ok(Ok(request))) => request,
        Ok(Ok(Err(refusal))) => {
            client.write_all(&refusal).await?;
            return client.shutdown().await;
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out")),
    };
    for i in 0..backends.len() {
        let backend = &backends[(first + i) % backends.len()];
        match tokio::time::timeout(try_timeout, exchange(backend, &request)).await {
            Ok(Ok(response)) => {
                client.write_all(&response).await?;
                return client.shutdown().await;
            }
            Ok(Err(e)) => tracing::debug!("demo-balance: {backend}: {e}; trying the next"),
            Err(_) => tracing::debug!("demo-balance: {backend}: no answer in {try_timeout:?}"),
        }
    }
    let body = format!("no backend answered within {try_timeout:?}\n");
    client
        .write_all(&http::response("502 Bad Gateway", "", &body, true))
        .await?;
    client.shutdown().await
}

/// Reads a request and rewrites it for forwarding with `Connection: close`, so every
/// backend ends its response by closing. `Ok(Err(response))` is a refusal to send back.
async fn read_request(client: &mut TcpStream) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
    let (mut buf, head_len) = http::read_head(client).await?;
    let head = std::str::from_utf8(&buf[..head_len - 4])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request head is not UTF-8"))?;
    if http::header(head, "transfer-encoding").is_some() {
        let refusal = "chunked request bodies are not supported\n";
        return Ok(Err(http::response(
            "501 Not Implemented",
            "",
            refusal,
            true,
        )));
    }
    let body_len = match http::header(head, "content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(_) => {
            let refusal = "bad or too large Content-Length\n";
            return Ok(Err(http::response(
                "413 Content Too Large",
                "",
                refusal,
                true,
            )));
        }
    };
    let mut out = Vec::with_capacity(head_len + body_len + 20);
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line.split(':').next().unwrap_or_default().trim();
        let hop_by_hop = ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if i == 0 || !hop_by_hop {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    let have = buf.len() - head_len;
    if have < body_len {
        let start = buf.len();
        buf.resize(head_len + body_len, 0);
        client.read_exact(&mut buf[start..]).await?;
    }
    out.extend_from_slice(&buf[head_len..head_len + body_len]);
    Ok(Ok(out))
}

async fn exchange(backend: &str, request: &[u8]) -> io::Result<Vec<u8>> {
    let addr = tokio::net::lookup_host(backend)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name has no address"))?;
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut response)
        .await?;
    if response.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed without answering",
        ));
    }
    if response.len() as u64 > MAX_RESPONSE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "response too large",
        ));
    }
    Ok(response)
}
