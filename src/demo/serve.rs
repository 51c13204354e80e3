//! `faultline demo-serve`: one web replica of the demo, a minimal HTTP/1.1 server.

use std::io;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::http;

/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
/// Serves on `0.0.0.0:port`: every GET is answered `200` with `hello from <name>\n`.
pub(crate) async fn serve(port: u16, name: String) -> io::Result<()> {
    let listener = TcpListener::bind(std::net::SocketAddr::from((
        std::net::Ipv4Addr::UNSPECIFIED,
        port,
    )))
    .await?;
    serve_on(listener, name).await
}

/// Serves on a listener that is already bound; returns only on a fatal error.
pub(crate) async fn serve_on(listener: TcpListener, name: String) -> io::Result<()> {
    let body: Arc<str> = format!("hello from {name}\n").into();
    loop {
        let stream = super::accept(&listener).await;
        let body = Arc::clone(&body);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &body).await {
                tracing::debug!("demo-serve: {e}");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, body: &str) -> io::Result<()> {
    let (buf, _) = tokio::time::timeout(REQUEST_TIMEOUT, http::read_head(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head timed out"))??;
    let method = buf.split(|b| *b == b' ').next().unwrap_or_default();
    let response = match method {
        b"GET" => http::response("200 OK", "", body, true),
        b"HEAD" => http::response("200 OK", "", body, false),
        _ => http::response(
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD\n",
            true,
        ),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}
