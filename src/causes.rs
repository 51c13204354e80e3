//! What went wrong, in words: an error's chain of causes made readable. Shared by the
//! platforms and the probes, so it depends on nothing else in the crate.

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
