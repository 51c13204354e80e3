//! Probes (spec section 3): one attempt of a probe becomes a [`Sample`].
//!
//! A sample never returns an error: every failure, including "cannot reach the
//! platform", is a failed sample whose `detail` says why. Details never echo URLs,
//! addresses or header values, which may carry secrets taken from the environment.

pub mod command;
pub mod docker;
pub mod http;
pub mod kubernetes;
pub mod prometheus;
pub mod tcp;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::experiment::model::{ProbeKind, ProbeSpec};

/// The outcome of one probe attempt.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sample {
    pub ok: bool,
    pub latency: Duration,
    pub detail: String,
    /// The measured value, for probes that measure one (prometheus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Time to the first byte of the response (the response head), for probes that
    /// read a response after it (http); `latency` is the time to its last byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfb: Option<Duration>,
}

impl Sample {
    pub fn pass(latency: Duration, detail: impl Into<String>) -> Sample {
        Sample {
            ok: true,
            latency,
            detail: detail.into(),
            value: None,
            ttfb: None,
        }
    }

    /// The same sample with its time to first byte.
    pub fn with_ttfb(mut self, ttfb: Option<Duration>) -> Sample {
        self.ttfb = ttfb;
        self
    }

    pub fn fail(latency: Duration, detail: impl Into<String>) -> Sample {
        Sample {
            ok: false,
            latency,
            detail: detail.into(),
            value: None,
            ttfb: None,
        }
    }
}

/// Shared state for sampling: HTTP clients and connected Docker and Kubernetes clients.
///
/// Cheap to clone; clones share the clients and the connection caches.
#[derive(Clone, Debug)]
pub struct ProbeContext {
    /// For `http://` URLs: no certificate store is loaded for it.
    plain: OnceLock<Result<reqwest::Client, String>>,
    /// For `https://` URLs: verifies certificates against the system's store, loaded
    /// once, on the first https request.
    verified: OnceLock<Result<reqwest::Client, String>>,
    /// Accepts any TLS certificate (`insecure: true`).
    insecure: OnceLock<Result<reqwest::Client, String>>,
    docker: docker::DockerCache,
    kube: kubernetes::KubeCache,
}

impl ProbeContext {
    pub fn new() -> Result<ProbeContext, String> {
        // reqwest is built with `rustls-no-provider`; an error here only means a
        // provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(ProbeContext {
            plain: OnceLock::new(),
            verified: OnceLock::new(),
            insecure: OnceLock::new(),
            docker: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            kube: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
        })
    }

    /// The HTTP client for `url`, built on first use: loading the system's certificates
    /// is most of a short run's start-up, so it happens only for https.
    pub fn client(&self, url: &str, insecure: bool) -> Result<&reqwest::Client, String> {
        let https = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        let (cell, kind) = match (https, insecure) {
            (true, true) => (&self.insecure, Tls::AcceptAny),
            (true, false) => (&self.verified, Tls::Verify),
            (false, _) => (&self.plain, Tls::None),
        };
        cell.get_or_init(|| build_client(kind))
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[derive(Clone, Copy)]
enum Tls {
    None,
    Verify,
    AcceptAny,
}

fn build_client(tls: Tls) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(reqwest::redirect::Policy::none());
    let builder = match tls {
        // No roots: this client never speaks TLS.
        Tls::None => builder.tls_certs_only(Vec::<reqwest::Certificate>::new()),
        Tls::Verify => builder,
        Tls::AcceptAny => builder.tls_danger_accept_invalid_certs(true),
    };
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
}

/// Runs one attempt of the probe (a ProbeSpec whose kind is validated: exactly one kind).
pub async fn sample(probe: &ProbeSpec, ctx: &ProbeContext) -> Sample {
    let Some(kind) = probe.kinds().first().copied() else {
        return Sample::fail(Duration::ZERO, "the probe has no kind");
    };
    match kind {
        ProbeKind::Http(p) => http::sample(p, ctx).await,
        ProbeKind::Tcp(p) => tcp::sample(p).await,
        ProbeKind::Command(p) => command::sample(p).await,
        ProbeKind::Docker(p) => docker::sample(p, ctx).await,
        ProbeKind::Kubernetes(p) => kubernetes::sample(p, ctx).await,
        ProbeKind::Prometheus(p) => prometheus::sample(p, ctx).await,
    }
}

/// A measured latency for details: `<1ms`, `812ms`, `12.3s`.
pub(crate) fn fmt_latency(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "<1ms".into()
    } else if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

pub(crate) use crate::causes::{describe_io, error_chain, find_io_error, strip_os_error};

/// Adds a probe's `headers` to its request. A bad header is named; its value is never
/// shown: it may be a secret.
pub(crate) fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<reqwest::RequestBuilder, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name `{name}`"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value for header `{name}`"))?;
        request = request.header(name, value);
    }
    Ok(request)
}

/// Where a request failed, as the http-speaking probes word it.
#[derive(Debug, PartialEq)]
pub(crate) enum RequestFailure {
    /// Reading the response body failed (I/O or decoding).
    Body(String),
    /// The connection could not be made.
    Connect(String),
    /// Anything else (an I/O error while sending, a TLS or protocol error).
    Other(String),
}

/// Why a request failed, without its URL (it may carry a secret) and without reqwest's
/// "error sending request: client error (Connect): " preamble.
pub(crate) fn request_failure(err: reqwest::Error) -> RequestFailure {
    let err = err.without_url();
    if let Some(io) = find_io_error(&err) {
        let text = describe_io(io);
        return if err.is_body() || err.is_decode() {
            RequestFailure::Body(text)
        } else {
            RequestFailure::Other(text)
        };
    }
    let text = error_chain(&err);
    let text = text
        .strip_prefix("error sending request: ")
        .unwrap_or(&text);
    match text.strip_prefix("client error (Connect): ") {
        Some(rest) => RequestFailure::Connect(rest.to_string()),
        None => RequestFailure::Other(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_and_error_text() {
        assert_eq!(fmt_latency(Duration::from_micros(300)), "<1ms");
        assert_eq!(fmt_latency(Duration::from_millis(812)), "812ms");
        assert_eq!(fmt_latency(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(
            strip_os_error("No such file or directory (os error 2)"),
            "No such file or directory"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_io(&refused), "connection refused");
    }

    #[tokio::test]
    async fn prometheus_probes_are_routed() {
        let ctx = ProbeContext::new().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let prom: ProbeSpec = serde_json::from_value(serde_json::json!({
            "name": "p", "prometheus": {"url": format!("http://{addr}"), "query": "up", "min": 1}
        }))
        .unwrap();
        let s = sample(&prom, &ctx).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "cannot reach Prometheus: connection refused");
        assert_eq!(s.value, None);
    }
}
