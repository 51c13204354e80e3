//! The hidden subcommands faultline starts as its own helpers (stressors, the nfqueue
//! delayer, the HTTP proxy, the resolver): each parses its flags and calls the library.
//! Each first stops itself when asked to (a test of the helpers' own clean-up).

use super::args::{DelayerArgs, HttpProxyArgs, IohogArgs, MemhogArgs, ResolveArgs, StressArgs};
use crate::error::{Error, Exit};
use crate::fault::{cpu_stress, dns, http_proxy, io_stress, memory_stress, nfqueue, resolve};
use crate::platform::host::stop_self_if_asked;

pub(super) fn stress(a: &StressArgs) -> Exit {
    stop_self_if_asked();
    cpu_stress::burn(a.workers, a.load, a.until);
    Exit::Passed
}

pub(super) fn memhog(a: &MemhogArgs) -> Exit {
    stop_self_if_asked();
    let ramp = std::time::Duration::from_millis(a.ramp_ms);
    memory_stress::hold(a.bytes, ramp, a.until);
    Exit::Passed
}

pub(super) fn iohog(a: &IohogArgs) -> Result<Exit, Error> {
    stop_self_if_asked();
    let mode = crate::experiment::model::IoMode::from_arg(&a.mode)
        .ok_or_else(|| Error::Platform(format!("unknown I/O mode `{}`", a.mode)))?;
    io_stress::churn(&a.root, &a.path, &a.files, a.bytes, mode, a.until)
        .map_err(|e| Error::Platform(format!("the I/O stressor failed: {e}")))?;
    Ok(Exit::Passed)
}

pub(super) fn delayer(a: &DelayerArgs) -> Result<Exit, Error> {
    stop_self_if_asked();
    let shape = nfqueue::Shape {
        delay: std::time::Duration::from_micros(a.delay_us),
        jitter: std::time::Duration::from_micros(a.jitter_us),
        loss: a.loss.clamp(0.0, 1.0),
        corrupt: a.corrupt.clamp(0.0, 1.0),
        duplicate: a.duplicate.clamp(0.0, 1.0),
        reorder: a.reorder.clamp(0.0, 1.0),
        gap: a.reorder_gap,
    };
    let dns = match a.dns_mode.as_deref() {
        None => None,
        Some(m) => Some(dns::DnsRewrite {
            names: a.dns_name.clone(),
            mode: serde_json::from_value(serde_json::Value::String(m.to_string()))
                .map_err(|_| Error::Platform(format!("unknown --dns-mode `{m}`")))?,
            percent: a.dns_percent.clamp(0.0, 1.0),
        }),
    };
    nfqueue::run_delayer(a.queue, shape, a.until, dns)
        .map_err(|e| Error::Platform(format!("the delayer failed: {e}")))?;
    Ok(Exit::Passed)
}

pub(super) fn http_proxy(a: HttpProxyArgs) -> Result<Exit, Error> {
    stop_self_if_asked();
    let rules = serde_json::from_str(&a.rules)
        .map_err(|e| Error::Platform(format!("invalid --rules: {e}")))?;
    http_proxy::run_proxy(http_proxy::ProxyArgs {
        listen: a.listen,
        upstream: a.upstream,
        rules,
        until: a.until,
        marker: a.marker,
        parent: a.parent,
        counters: a.counters,
    })
    .map_err(|e| Error::Platform(format!("the HTTP proxy failed: {e}")))?;
    Ok(Exit::Passed)
}

pub(super) fn resolve(a: &ResolveArgs) -> Exit {
    print!(
        "{}",
        resolve::run_resolve(&a.nameserver, &a.search, &a.names)
    );
    Exit::Passed
}
