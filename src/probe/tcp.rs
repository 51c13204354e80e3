//! The `tcp` probe: passes when a connection opens.

use std::time::Instant;

use tokio::net::TcpStream;

use super::{Sample, describe_io, fmt_latency, strip_os_error};
use crate::experiment::model::TcpProbe;

pub async fn sample(p: &TcpProbe) -> Sample {
    let start = Instant::now();
    let outcome = tokio::time::timeout(p.timeout.std(), connect(&p.address)).await;
    let latency = start.elapsed();
    match outcome {
        Err(_) => Sample::fail(latency, format!("timed out after {}", p.timeout)),
        Ok(Err(detail)) => Sample::fail(latency, detail),
        Ok(Ok(_stream)) => Sample::pass(latency, format!("connected in {}", fmt_latency(latency))),
    }
}

/// Tries every address the host resolves to, in order; the last error wins.
async fn connect(address: &str) -> Result<TcpStream, String> {
    let addrs = tokio::net::lookup_host(address).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            "invalid address: write host:port".to_string()
        } else {
            format!(
                "cannot resolve the host: {}",
                strip_os_error(&e.to_string())
            )
        }
    })?;
    let mut last = "the host resolved to no address".to_string();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = describe_io(&e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn probe(address: String, timeout: &str) -> TcpProbe {
        serde_json::from_value(serde_json::json!({"address": address, "timeout": timeout})).unwrap()
    }

    #[tokio::test]
    async fn open_port_passes() {
        let (_listener, addr) = crate::test_support::local_listener().await;
        let s = sample(&probe(addr.to_string(), "2s")).await;
        assert!(s.ok, "{s:?}");
        assert!(s.detail.starts_with("connected in "), "{}", s.detail);
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let (listener, addr) = crate::test_support::local_listener().await;
        drop(listener);
        let s = sample(&probe(addr.to_string(), "2s")).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "connection refused");
    }

    #[tokio::test]
    async fn bad_address() {
        let s = sample(&probe("no-port-here".into(), "1s")).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "invalid address: write host:port");
    }
}
