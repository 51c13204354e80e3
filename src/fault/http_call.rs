//! `http_call`: an admin API call with a rollback request, made where faultline runs, once
//! for the whole fault. Like a `command` on the host without a shell: the rollback request
//! is journaled before the call and sent exactly once, through [`revert`].

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::command::{failed, trimmed};
use super::{FaultEffects, FaultKind, Prepared, Reported, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, HttpCallFault, HttpRequest, Target as TargetSpec, fault_timing,
};
use crate::experiment::units::StatusSpec;
use crate::platform::kubernetes::rbac::Permission;
use crate::platform::{Platform, PlatformError, Target};
use crate::report::CommandRun;

/// One request as the journal keeps it: everything [`revert`] needs, in a later process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses as `low-high` ranges; empty: 200-299.
    #[serde(default)]
    pub status: Vec<(u16, u16)>,
    pub timeout_ms: u64,
    #[serde(default)]
    pub insecure: bool,
}

fn ranges(status: Option<&Vec<StatusSpec>>) -> Vec<(u16, u16)> {
    status
        .map(|v| v.iter().map(|s| (s.low, s.high)).collect())
        .unwrap_or_default()
}

impl HttpCallFault {
    fn call(&self) -> RequestRecord {
        RequestRecord {
            method: self.method.to_ascii_uppercase(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            status: ranges(self.status.as_ref()),
            timeout_ms: self.timeout.as_millis(),
            insecure: self.insecure,
        }
    }

    fn rollback_record(&self, r: &HttpRequest) -> RequestRecord {
        RequestRecord {
            method: r.method.to_ascii_uppercase(),
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
            status: ranges(r.status.as_ref()),
            timeout_ms: self.timeout.as_millis(),
            insecure: self.insecure,
        }
    }
}

/// `keys`: where to point at the URL and at the method.
fn check_request(
    p: &mut FaultProblems,
    keys: (&'static str, &'static str),
    method: &str,
    url: &str,
) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        p.err_at(
            keys.0,
            format!("`{url}` is not an http(s) URL: start it with http:// or https://"),
        );
    }
    if reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err()
        || method.is_empty()
    {
        p.err_at(
            keys.1,
            format!("`{method}` is not an HTTP method (e.g. POST, PUT, DELETE)"),
        );
    }
}

impl FaultSpec for HttpCallFault {
    fault_timing!("http_call", optional);

    fn describe(&self) -> String {
        let mut s = format!(
            "http_call {} {}",
            self.method.to_ascii_uppercase(),
            self.url
        );
        if let Some(r) = &self.rollback {
            s.push_str(&format!(
                ", rollback {} {}",
                r.method.to_ascii_uppercase(),
                r.url
            ));
            match self.duration {
                Some(d) => s.push_str(&format!(" after {d}")),
                None => s.push_str(" when the other faults end"),
            }
        }
        s
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        check_request(p, ("url", "method"), &self.method, &self.url);
        if let Some(r) = &self.rollback {
            check_request(p, ("rollback", "rollback"), &r.method, &r.url);
        }
        super::command::check_timing(
            p,
            (self.duration, self.timeout),
            self.rollback.is_some(),
            "the rollback request is sent",
        );
    }
}

#[async_trait]
impl FaultKind for HttpCallFault {
    async fn prepare(&self, _: &dyn Platform, target: &Target) -> Prepared {
        Ok(self.rollback.as_ref().map(|r| {
            Undo::new(UndoRecord::HttpRollback {
                target: target.clone(),
                request: self.rollback_record(r),
            })
        }))
    }

    async fn inject_reporting(&self, _: &dyn Platform, _: &Target, _: Option<&Undo>) -> Reported {
        let sent = send(&self.call()).await?;
        Ok(Some(FaultEffects {
            run: Some(sent),
            ..Default::default()
        }))
    }

    /// Made once, where faultline runs.
    fn once(&self) -> bool {
        true
    }

    /// Nothing in the cluster: the request goes from where faultline runs.
    fn rbac(&self) -> &'static [Permission] {
        &[]
    }
}

/// Sends the rollback request and confirms its status.
pub async fn revert(request: &RequestRecord) -> Result<Option<FaultEffects>, PlatformError> {
    let sent = send(request).await.map_err(|e| match e {
        PlatformError::Refused(m) => PlatformError::Refused(m.replacen("`run`", "`rollback`", 1)),
        other => other,
    })?;
    Ok(Some(FaultEffects {
        rollback: Some(sent),
        ..Default::default()
    }))
}

/// Sends one request; a status outside the accepted ones (or none in time) is refused.
async fn send(r: &RequestRecord) -> Result<CommandRun, PlatformError> {
    let probes = crate::probe::ProbeContext::new().map_err(PlatformError::Refused)?;
    let client = probes
        .client(&r.url, r.insecure)
        .map_err(PlatformError::Refused)?;
    let method = reqwest::Method::from_bytes(r.method.as_bytes())
        .map_err(|_| PlatformError::Refused(format!("`{}` is not an HTTP method", r.method)))?;
    let mut req = client.request(method, &r.url);
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &r.body {
        req = req.body(b.clone());
    }
    let timeout = StdDuration::from_millis(r.timeout_ms);
    let start = Instant::now();
    let answer = tokio::time::timeout(timeout, async {
        let response = req.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, text))
    })
    .await;
    let duration_ms = start.elapsed().as_millis() as u64;
    let ran = match answer {
        Err(_) => CommandRun {
            exit_code: None,
            status: None,
            output: format!("no answer within {}ms", timeout.as_millis()),
            duration_ms,
        },
        Ok(Err(e)) => {
            return Err(PlatformError::Refused(format!(
                "{} {} failed: {}",
                r.method,
                r.url,
                crate::causes::error_chain(&e)
            )));
        }
        Ok(Ok((status, text))) => CommandRun {
            exit_code: None,
            status: Some(status),
            output: trimmed(&text, ""),
            duration_ms,
        },
    };
    let accepted = ran.status.is_some_and(|s| {
        if r.status.is_empty() {
            (200..=299).contains(&s)
        } else {
            r.status.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s))
        }
    });
    if !accepted {
        return Err(PlatformError::Refused(failed("run", &ran)));
    }
    Ok(ran)
}
