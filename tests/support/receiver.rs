//! A notification receiver: a loopback HTTP server that keeps every request it gets, for
//! the tests of `--notify` and of the notifier.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request's path, e.g. `/hook-a`.
    pub path: String,
    /// The request line and the headers, lower-cased.
    pub head: String,
    /// The body as JSON (`null` when it is not JSON).
    pub body: Value,
}

/// A loopback HTTP server on threads of its own that answers every request `200` and keeps
/// it; it lives as long as the test process.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, to which a test adds the paths it wants.
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let keep = keep.clone();
                std::thread::spawn(move || {
                    if let Some(request) = read_request(&mut stream) {
                        keep.lock().unwrap().push(request);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                });
            }
        });
        Receiver { url, got }
    }

    /// The requests it got so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Reads one request (its head, then as much body as its Content-Length says); `None` when
/// the client stops or is silent for 2 s before that.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut read_more = |data: &mut Vec<u8>| match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            data.extend_from_slice(&chunk[..n]);
            Some(())
        }
    };
    let (head, body_start) = loop {
        read_more(&mut data)?;
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&data[..i]).to_lowercase(), i + 4);
        }
    };
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < body_start + len {
        read_more(&mut data)?;
    }
    Some(Received {
        path: head.split_whitespace().nth(1).unwrap_or("").to_string(),
        body: serde_json::from_slice(&data[body_start..]).unwrap_or(Value::Null),
        head,
    })
}
