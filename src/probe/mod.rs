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
use std::sync::Arc;
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
    /// Verifies TLS certificates.
    pub http: reqwest::Client,
    /// Accepts any TLS certificate (`insecure: true`).
    pub http_insecure: reqwest::Client,
    docker: docker::DockerCache,
    kube: kubernetes::KubeCache,
}

impl ProbeContext {
    pub fn new() -> Result<ProbeContext, String> {
        // reqwest is built with `rustls-no-provider`; an error here only means a
        // provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .tls_backend_rustls()
                .tls_danger_accept_invalid_certs(insecure)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
        };
        Ok(ProbeContext {
            http: build(false)?,
            http_insecure: build(true)?,
            docker: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            kube: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
        })
    }
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

/// An error and its sources joined with ": ", skipping a source whose text the
/// previous message already contains.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = strip_os_error(&err.to_string());
    let mut source = err.source();
    while let Some(e) = source {
        let text = strip_os_error(&e.to_string());
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// `No such file or directory (os error 2)` → `No such file or directory`.
pub(crate) fn strip_os_error(text: &str) -> String {
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}

/// The first `std::io::Error` in an error's source chain, innermost if nested.
pub(crate) fn find_io_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a std::io::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(mut io) = e.downcast_ref::<std::io::Error>() {
            // Connectors wrap the real error in io::Error(Other) and io::source() skips
            // the wrapped error itself, so unwrap by hand.
            while let Some(inner) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<std::io::Error>())
            {
                io = inner;
            }
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// A short description of a failed connection attempt.
pub(crate) fn describe_io(err: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return format!("TLS error: {tls}");
    }
    match err.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        AddrNotAvailable => "address not available".into(),
        _ => strip_os_error(&err.to_string()),
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
