//! The `http` probe: one request, judged by status, body and latency.

use std::time::Instant;

use super::{ProbeContext, RequestFailure, Sample, fmt_latency, request_failure, with_headers};
use crate::experiment::model::HttpProbe;
use crate::experiment::units::StatusSpec;

/// How much of a response body `body_contains` looks at.
const BODY_CAP: usize = 1024 * 1024;

const DEFAULT_STATUS: StatusSpec = StatusSpec {
    low: 200,
    high: 399,
};

pub async fn sample(p: &HttpProbe, ctx: &ProbeContext) -> Sample {
    let request = match ctx
        .client(&p.url, p.insecure)
        .and_then(|client| build(client, p))
    {
        Ok(r) => r,
        Err(detail) => return Sample::fail(std::time::Duration::ZERO, detail),
    };
    let start = Instant::now();
    let mut ttfb = None;
    // Latency is the time to the whole response: the body is always read to its end (only
    // the first BODY_CAP bytes are kept, for `body_contains`). The outer timeout bounds the
    // body read too; reqwest's own one covers the request.
    let outcome = tokio::time::timeout(p.timeout.std(), async {
        let response = request.send().await?;
        ttfb = Some(start.elapsed());
        let status = response.status();
        let body = read_to_end(response, p.body_contains.is_some()).await?;
        Ok::<_, reqwest::Error>((status, body))
    })
    .await;
    let latency = start.elapsed();
    let (status, body) = match outcome {
        Err(_) => {
            return Sample::fail(latency, format!("timed out after {}", p.timeout)).with_ttfb(ttfb);
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Sample::fail(latency, format!("timed out after {}", p.timeout)).with_ttfb(ttfb);
        }
        Ok(Err(e)) => return Sample::fail(latency, describe(e)).with_ttfb(ttfb),
        Ok(Ok(r)) => r,
    };
    sample_of(p, status, body, latency, ttfb).with_ttfb(ttfb)
}

/// Judges a complete response.
fn sample_of(
    p: &HttpProbe,
    status: reqwest::StatusCode,
    body: Vec<u8>,
    latency: std::time::Duration,
    ttfb: Option<std::time::Duration>,
) -> Sample {
    let code = status.as_u16();
    let accepted = p.status.as_deref().unwrap_or(&[DEFAULT_STATUS]);
    if !accepted.iter().any(|s| s.matches(code)) {
        let list: Vec<String> = accepted.iter().map(ToString::to_string).collect();
        return Sample::fail(
            latency,
            format!("status {code} not in [{}]", list.join(", ")),
        );
    }
    if let Some(needle) = &p.body_contains {
        if !String::from_utf8_lossy(&body).contains(needle.as_str()) {
            return Sample::fail(latency, format!("body does not contain `{needle}`"));
        }
    }
    if let Some(max) = p.max_latency {
        if latency > max.std() {
            return Sample::fail(
                latency,
                format!(
                    "took {}{}, over max_latency {max}",
                    fmt_latency(latency),
                    first_byte(ttfb)
                ),
            );
        }
    }
    let reason = status.canonical_reason().unwrap_or("");
    let text = format!("{code} {reason}");
    Sample::pass(
        latency,
        format!(
            "{} in {}{}",
            text.trim_end(),
            fmt_latency(latency),
            first_byte(ttfb)
        ),
    )
}

/// ` (first byte 2ms)`: when the response head arrived (the latency is to the last byte).
fn first_byte(ttfb: Option<std::time::Duration>) -> String {
    match ttfb {
        Some(t) => format!(" (first byte {})", fmt_latency(t)),
        None => String::new(),
    }
}

fn build(client: &reqwest::Client, p: &HttpProbe) -> Result<reqwest::RequestBuilder, String> {
    let method = reqwest::Method::from_bytes(p.method.as_bytes())
        .map_err(|_| format!("invalid HTTP method `{}`", p.method))?;
    let url = reqwest::Url::parse(&p.url).map_err(|e| format!("invalid URL: {e}"))?;
    let mut request = with_headers(
        client.request(method, url).timeout(p.timeout.std()),
        &p.headers,
    )?;
    if let Some(body) = &p.body {
        request = request.body(body.clone());
    }
    Ok(request)
}

/// Reads the body to its end; keeps its first BODY_CAP bytes when `keep` is set.
async fn read_to_end(
    mut response: reqwest::Response,
    keep: bool,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if keep {
            let room = BODY_CAP - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    Ok(body)
}

fn describe(err: reqwest::Error) -> String {
    match request_failure(err) {
        RequestFailure::Body(text) => format!("reading the body failed: {text}"),
        RequestFailure::Connect(text) => format!("cannot connect: {text}"),
        RequestFailure::Other(text) => text,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What the test server does with each request.
    #[derive(Clone)]
    enum Reply {
        /// Status line (e.g. "200 OK"), body, delay before answering.
        Answer(&'static str, &'static str, Duration),
        /// Accept and read, but never answer.
        Silent,
    }

    async fn server(reply: Reply) -> SocketAddr {
        crate::test_support::serve(move |mut stream, _| {
            let reply = reply.clone();
            async move {
                match reply {
                    Reply::Silent => {
                        // Hold the connection open without answering.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Reply::Answer(status, body, delay) => {
                        tokio::time::sleep(delay).await;
                        let response = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                }
            }
        })
        .await
    }

    fn probe(addr: SocketAddr, extra: serde_json::Value) -> HttpProbe {
        let mut v = serde_json::json!({"url": format!("http://{addr}/health")});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    /// One sample of the probe of `addr` with `extra` fields, on a context of its own.
    async fn sample_at(addr: SocketAddr, extra: serde_json::Value) -> Sample {
        sample(&probe(addr, extra), &ProbeContext::new().unwrap()).await
    }

    fn ok_reply() -> Reply {
        Reply::Answer("200 OK", "all ok", Duration::ZERO)
    }

    #[tokio::test]
    async fn status_200_passes() {
        let addr = server(ok_reply()).await;
        let s = sample_at(addr, serde_json::json!({})).await;
        assert!(s.ok, "{s:?}");
        assert!(s.detail.starts_with("200 OK in "), "{}", s.detail);
    }

    #[tokio::test]
    async fn status_mismatch_fails() {
        let addr = server(Reply::Answer(
            "503 Service Unavailable",
            "down",
            Duration::ZERO,
        ))
        .await;
        let s = sample_at(addr, serde_json::json!({"status": [200]})).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "status 503 not in [200]");
        // The default list, and redirects are judged, not followed.
        let addr = server(Reply::Answer("302 Found", "", Duration::ZERO)).await;
        let s = sample_at(addr, serde_json::json!({})).await;
        assert!(s.ok, "{s:?}");
        let s = sample_at(addr, serde_json::json!({"status": ["2xx", 204]})).await;
        assert_eq!(s.detail, "status 302 not in [200-299, 204]");
    }

    #[tokio::test]
    async fn body_contains() {
        let addr = server(ok_reply()).await;
        let s = sample_at(addr, serde_json::json!({"body_contains": "ok"})).await;
        assert!(s.ok, "{s:?}");
        let s = sample_at(addr, serde_json::json!({"body_contains": "nope"})).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "body does not contain `nope`");
    }

    #[tokio::test]
    async fn method_headers_body_are_sent() {
        let (listener, addr) = crate::test_support::local_listener().await;
        let seen = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&req).contains("ping") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0);
                req.extend_from_slice(&buf[..n]);
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            String::from_utf8_lossy(&req).to_lowercase()
        });
        let s = sample_at(
            addr,
            serde_json::json!({"method": "POST", "headers": {"X-Token": "abc"}, "body": "ping"}),
        )
        .await;
        assert!(s.ok, "{s:?}");
        assert_eq!(s.detail.split(" in ").next(), Some("201 Created"));
        let req = seen.await.unwrap();
        assert!(req.starts_with("post /health http/1.1"), "{req}");
        assert!(req.contains("x-token: abc"), "{req}");
    }

    #[tokio::test]
    async fn max_latency_exceeded() {
        let addr = server(Reply::Answer("200 OK", "ok", Duration::from_millis(300))).await;
        let s = sample_at(
            addr,
            serde_json::json!({"max_latency": "100ms", "timeout": "3s"}),
        )
        .await;
        assert!(!s.ok);
        assert!(s.latency >= Duration::from_millis(300), "{s:?}");
        assert!(s.detail.starts_with("took "), "{}", s.detail);
        assert!(
            s.detail.ends_with("ms), over max_latency 100ms"),
            "{}",
            s.detail
        );
    }

    /// Sends the head at once, then the body in `chunks` pieces `gap` apart.
    async fn trickling_server(chunks: usize, gap: Duration) -> SocketAddr {
        crate::test_support::serve(move |mut stream, _| async move {
            let chunk = [b'x'; 1024];
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                chunks * chunk.len()
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let _ = stream.flush().await;
            for _ in 0..chunks {
                tokio::time::sleep(gap).await;
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown().await;
        })
        .await
    }

    /// Regression: latency stopped at the response head, so a slow download "passed".
    #[tokio::test]
    async fn latency_is_the_whole_response_and_ttfb_is_kept_apart() {
        // The head at once, then 10 KiB over ~1 s.
        let addr = trickling_server(10, Duration::from_millis(100)).await;
        let s = sample_at(
            addr,
            serde_json::json!({"max_latency": "300ms", "timeout": "5s"}),
        )
        .await;
        assert!(!s.ok, "a 1 s download must fail max_latency 300ms: {s:?}");
        assert!(s.latency >= Duration::from_millis(1000), "{s:?}");
        let ttfb = s
            .ttfb
            .expect("the http probe reports its time to first byte");
        assert!(ttfb < Duration::from_millis(300), "{s:?}");
        assert!(s.detail.starts_with("took "), "{}", s.detail);
        assert!(
            s.detail.ends_with(", over max_latency 300ms"),
            "{}",
            s.detail
        );
        assert!(s.detail.contains("(first byte "), "{}", s.detail);

        // Without max_latency the sample passes and still measures the whole body.
        let s = sample_at(addr, serde_json::json!({"timeout": "5s"})).await;
        assert!(s.ok, "{s:?}");
        assert!(s.latency >= Duration::from_millis(1000), "{s:?}");
        assert!(s.ttfb.unwrap() < Duration::from_millis(300), "{s:?}");

        // A timeout shorter than the download fails the sample.
        let s = sample_at(addr, serde_json::json!({"timeout": "400ms"})).await;
        assert!(!s.ok, "{s:?}");
        assert_eq!(s.detail, "timed out after 400ms");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let addr = server(Reply::Silent).await;
        let started = Instant::now();
        let s = sample_at(addr, serde_json::json!({"timeout": "300ms"})).await;
        let took = started.elapsed();
        assert!(!s.ok);
        assert_eq!(s.detail, "timed out after 300ms");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn connection_refused() {
        let (listener, addr) = crate::test_support::local_listener().await;
        drop(listener);
        let s = sample_at(addr, serde_json::json!({"timeout": "2s"})).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "connection refused");
    }

    #[tokio::test]
    async fn invalid_header_value_is_not_echoed() {
        let addr = server(ok_reply()).await;
        let s = sample_at(
            addr,
            serde_json::json!({"headers": {"Authorization": "secret\nvalue"}}),
        )
        .await;
        assert!(!s.ok);
        assert_eq!(s.detail, "invalid value for header `authorization`");
    }

    #[tokio::test]
    async fn https_to_a_plain_server_is_a_tls_error() {
        let ctx = ProbeContext::new().unwrap();
        // Answers plain HTTP at once, without waiting for a request head.
        let (listener, addr) = crate::test_support::local_listener().await;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        for insecure in [false, true] {
            let p: HttpProbe = serde_json::from_value(serde_json::json!({
                "url": format!("https://{addr}/"), "insecure": insecure, "timeout": "2s"
            }))
            .unwrap();
            let s = sample(&p, &ctx).await;
            assert!(!s.ok);
            assert!(s.detail.starts_with("TLS error: "), "{}", s.detail);
        }
    }
}
