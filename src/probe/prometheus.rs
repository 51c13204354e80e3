//! The `prometheus` probe: one instant PromQL query whose single value must lie within
//! `min`/`max`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ProbeContext, RequestFailure, Sample, fmt_latency, request_failure, with_headers};
use crate::experiment::model::PrometheusProbe;

/// A larger answer cannot be one sample; reading stops there.
const BODY_CAP: usize = 8 * 1024 * 1024;

pub async fn sample(p: &PrometheusProbe, ctx: &ProbeContext) -> Sample {
    let request = match ctx
        .client(&p.url, false)
        .and_then(|client| build(client, p))
    {
        Ok(r) => r,
        Err(detail) => return Sample::fail(Duration::ZERO, detail),
    };
    let start = Instant::now();
    // The outer timeout bounds the body read too; reqwest's own one covers the request.
    let outcome = tokio::time::timeout(p.timeout.std(), async {
        let response = request.send().await?;
        let status = response.status();
        let body = read_capped(response).await?;
        Ok::<_, reqwest::Error>((status, body))
    })
    .await;
    let latency = start.elapsed();
    let timed_out = || format!("Prometheus did not answer within {}", p.timeout);
    let (status, body) = match outcome {
        Err(_) => return Sample::fail(latency, timed_out()),
        Ok(Err(e)) if e.is_timeout() => return Sample::fail(latency, timed_out()),
        Ok(Err(e)) => return Sample::fail(latency, describe(e)),
        Ok(Ok(r)) => r,
    };
    let value = match judge_body(status, body) {
        Ok(v) => v,
        Err(detail) => return Sample::fail(latency, detail),
    };
    let mut s = match check_bounds(value, p.min, p.max) {
        Ok(text) => Sample::pass(latency, format!("{text} in {}", fmt_latency(latency))),
        Err(text) => Sample::fail(latency, text),
    };
    // NaN and infinities have no JSON number; the report keeps finite values only.
    s.value = value.is_finite().then_some(value);
    s
}

fn build(client: &reqwest::Client, p: &PrometheusProbe) -> Result<reqwest::RequestBuilder, String> {
    let url = query_url(&p.url, &p.query, p.timeout.std())?;
    let request = with_headers(client.get(url).timeout(p.timeout.std()), &p.headers)?;
    Ok(request.header(reqwest::header::ACCEPT, "application/json"))
}

/// `{base}/api/v1/query?query=...&timeout=...`, keeping a path prefix such as `/prom`.
fn query_url(base: &str, query: &str, timeout: Duration) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("invalid URL: {e}"))?;
    if url.cannot_be_a_base() {
        return Err("invalid URL: it cannot have a path".into());
    }
    let path = format!("{}/api/v1/query", url.path().trim_end_matches('/'));
    url.set_path(&path);
    // The server stops evaluating when the probe stops waiting.
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("timeout", &format!("{}", timeout.as_secs_f64()));
    Ok(url)
}

async fn read_capped(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > BODY_CAP {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The one value of a query response, or why there is not exactly one.
fn judge_body(status: reqwest::StatusCode, body: Option<Vec<u8>>) -> Result<f64, String> {
    let Some(body) = body else {
        return Err(format!(
            "the answer is larger than {} MiB: the query returns far more than one sample; aggregate it to one, e.g. sum(...)",
            BODY_CAP / (1024 * 1024)
        ));
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let api_status = json.as_ref().and_then(|j| j["status"].as_str());
    match (api_status, json.as_ref()) {
        (Some("success"), Some(j)) if status.is_success() => value_of(&j["data"]),
        (Some("error"), Some(j)) => {
            let kind = j["errorType"].as_str().unwrap_or("unknown");
            let msg = j["error"].as_str().unwrap_or("no message");
            Err(format!("Prometheus API error ({kind}): {msg}"))
        }
        _ if !status.is_success() => {
            let reason = status.canonical_reason().unwrap_or("");
            Err(format!(
                "HTTP {} {reason} from Prometheus; is `url` the server's base URL (with its path prefix, if any)?",
                status.as_u16()
            )
            .replace("  ", " "))
        }
        _ => Err(
            "the answer is not a Prometheus API response; is `url` the server's base URL (with its path prefix, if any)?"
                .into(),
        ),
    }
}

fn value_of(data: &Value) -> Result<f64, String> {
    match data["resultType"].as_str() {
        Some("scalar") => parse_point(&data["result"]),
        Some("vector") => {
            let result = data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            match result {
                [] => Err("query returned no sample".into()),
                [one] => parse_point(&one["value"]),
                many => Err(format!(
                    "query returned {} samples; aggregate it to one, e.g. sum(...)",
                    many.len()
                )),
            }
        }
        Some("matrix") => Err(
            "query returned a range vector; an instant value is needed, e.g. max_over_time(...[5m])"
                .into(),
        ),
        Some(other) => Err(format!(
            "query returned a {other}, not a number; an instant value is needed"
        )),
        None => Err("the answer has no resultType; is this a Prometheus API?".into()),
    }
}

/// `[1712345678.9, "0.25"]` → 0.25. Prometheus writes values as strings (`NaN`, `+Inf`).
fn parse_point(point: &Value) -> Result<f64, String> {
    let text = point[1]
        .as_str()
        .ok_or("the answer's sample has no value; is this a Prometheus API?")?;
    let v: f64 = text
        .parse()
        .map_err(|_| format!("the sample's value `{text}` is not a number"))?;
    if v.is_nan() {
        return Err("query returned NaN (e.g. a division by zero when there is no traffic)".into());
    }
    Ok(v)
}

fn check_bounds(v: f64, min: Option<f64>, max: Option<f64>) -> Result<String, String> {
    if let Some(lo) = min.filter(|lo| v < *lo) {
        return Err(format!("value {} is below min {}", num(v), num(lo)));
    }
    if let Some(hi) = max.filter(|hi| v > *hi) {
        return Err(format!("value {} is above max {}", num(v), num(hi)));
    }
    let bounds = match (min, max) {
        (Some(lo), Some(hi)) => format!("{}..{}", num(lo), num(hi)),
        (Some(lo), None) => format!(">= {}", num(lo)),
        (None, Some(hi)) => format!("<= {}", num(hi)),
        (None, None) => "no bounds".into(),
    };
    Ok(format!("value {} within {bounds}", num(v)))
}

/// Shortest form that reads back as the same number: `1`, `0.0042`, `1e-9`, `+Inf`.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e15) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn describe(err: reqwest::Error) -> String {
    match request_failure(err) {
        RequestFailure::Body(text) => format!("reading the answer from Prometheus failed: {text}"),
        RequestFailure::Connect(text) | RequestFailure::Other(text) => {
            format!("cannot reach Prometheus: {text}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A server answering every request with `status` and `body`; records request heads.
    async fn server(status: &'static str, body: String) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let addr = crate::test_support::serve(move |mut stream, request| {
            log.lock().unwrap().push(request.head);
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            async move {
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        })
        .await;
        (addr, seen)
    }

    fn probe(url: String, extra: Value) -> PrometheusProbe {
        let mut v = serde_json::json!({"url": url, "query": "up", "timeout": "2s"});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn vector(values: &[&str]) -> String {
        let result: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"metric": {"i": i.to_string()}, "value": [1.5, v]}))
            .collect();
        success("vector", Value::from(result))
    }

    /// A successful query answer of `result_type`.
    fn success(result_type: &str, result: Value) -> String {
        serde_json::json!({"status": "success", "data": {"resultType": result_type, "result": result}})
            .to_string()
    }

    #[track_caller]
    fn assert_detail_starts_with(s: &Sample, prefix: &str) {
        assert!(s.detail.starts_with(prefix), "{}", s.detail);
    }

    async fn run(status: &'static str, body: String, extra: Value) -> Sample {
        let ctx = ProbeContext::new().unwrap();
        let (addr, _) = server(status, body).await;
        sample(&probe(format!("http://{addr}"), extra), &ctx).await
    }

    #[tokio::test]
    async fn one_sample_within_bounds_passes_and_keeps_the_value() {
        let s = run("200 OK", vector(&["0.25"]), serde_json::json!({"max": 0.5})).await;
        assert!(s.ok, "{s:?}");
        assert_eq!(s.value, Some(0.25));
        assert_detail_starts_with(&s, "value 0.25 within <= 0.5 in ");
        let scalar = success("scalar", serde_json::json!([1.5, "3"]));
        let s = run("200 OK", scalar, serde_json::json!({"min": 1, "max": 3})).await;
        assert!(s.ok, "{s:?}");
        assert_detail_starts_with(&s, "value 3 within 1..3 in ");
    }

    #[tokio::test]
    async fn out_of_bounds_fails_with_the_value() {
        let s = run("200 OK", vector(&["0.75"]), serde_json::json!({"max": 0.5})).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "value 0.75 is above max 0.5");
        assert_eq!(s.value, Some(0.75));
        let s = run("200 OK", vector(&["0"]), serde_json::json!({"min": 1})).await;
        assert_eq!(s.detail, "value 0 is below min 1");
        let s = run("200 OK", vector(&["+Inf"]), serde_json::json!({"max": 1})).await;
        assert_eq!(s.detail, "value +Inf is above max 1");
        assert_eq!(s.value, None);
    }

    #[tokio::test]
    async fn not_exactly_one_sample_fails_and_says_which() {
        let s = run("200 OK", vector(&[]), serde_json::json!({"min": 1})).await;
        assert_eq!(
            (s.ok, s.detail.as_str()),
            (false, "query returned no sample")
        );
        let s = run(
            "200 OK",
            vector(&["1", "2", "3"]),
            serde_json::json!({"min": 1}),
        )
        .await;
        assert_eq!(
            s.detail,
            "query returned 3 samples; aggregate it to one, e.g. sum(...)"
        );
        let s = run("200 OK", vector(&["NaN"]), serde_json::json!({"min": 1})).await;
        assert_detail_starts_with(&s, "query returned NaN");
        assert_eq!(s.value, None);
        let matrix = success("matrix", serde_json::json!([]));
        let s = run("200 OK", matrix, serde_json::json!({"min": 1})).await;
        assert_detail_starts_with(&s, "query returned a range vector");
    }

    #[tokio::test]
    async fn api_and_http_errors() {
        let err = serde_json::json!({"status": "error", "errorType": "bad_data",
            "error": "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"})
        .to_string();
        let s = run("400 Bad Request", err, serde_json::json!({"min": 1})).await;
        assert!(!s.ok);
        assert_eq!(
            s.detail,
            "Prometheus API error (bad_data): invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
        );
        let s = run(
            "404 Not Found",
            "404 page not found".into(),
            serde_json::json!({"min": 1}),
        )
        .await;
        assert_detail_starts_with(&s, "HTTP 404 Not Found from Prometheus; ");
        let s = run("200 OK", "<html>".into(), serde_json::json!({"min": 1})).await;
        assert!(
            s.detail
                .starts_with("the answer is not a Prometheus API response"),
            "{}",
            s.detail
        );
    }

    #[tokio::test]
    async fn path_prefix_query_and_headers_are_sent_but_never_shown() {
        let ctx = ProbeContext::new().unwrap();
        let (addr, seen) = server("200 OK", vector(&[])).await;
        let p = probe(
            format!("http://{addr}/prom/"),
            serde_json::json!({"query": "sum(rate(x{a=\"b\"}[1m]))", "min": 1,
                "headers": {"Authorization": "Bearer s3cr3t-token"}}),
        );
        let s = sample(&p, &ctx).await;
        assert_eq!(s.detail, "query returned no sample");
        let head = seen.lock().unwrap()[0].clone();
        let line = head.lines().next().unwrap();
        let want = "GET /prom/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29&timeout=2 HTTP/1.1";
        assert_eq!(line, want);
        assert!(
            head.to_lowercase()
                .contains("authorization: bearer s3cr3t-token"),
            "{head}"
        );

        let p = probe(
            format!("http://{addr}"),
            serde_json::json!({"min": 1, "headers": {"Authorization": "Bearer s3cr3t\ntoken"}}),
        );
        let s = sample(&p, &ctx).await;
        assert_eq!(s.detail, "invalid value for header `authorization`");
    }

    #[tokio::test]
    async fn down_and_silent_servers() {
        let ctx = ProbeContext::new().unwrap();
        let (listener, addr) = crate::test_support::local_listener().await;
        drop(listener);
        let s = sample(
            &probe(format!("http://{addr}"), serde_json::json!({"min": 1})),
            &ctx,
        )
        .await;
        assert_eq!(s.detail, "cannot reach Prometheus: connection refused");

        // Accepts, never answers.
        let (listener, addr) = crate::test_support::local_listener().await;
        let hold = tokio::spawn(async move {
            let _conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let p = probe(
            format!("http://{addr}"),
            serde_json::json!({"min": 1, "timeout": "300ms"}),
        );
        let started = Instant::now();
        let s = sample(&p, &ctx).await;
        assert_eq!(s.detail, "Prometheus did not answer within 300ms");
        assert!(started.elapsed() < Duration::from_millis(1500));
        hold.abort();
    }

    #[test]
    fn numbers_read_back() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.0042), "0.0042");
        assert_eq!(num(1e-9), "1e-9");
        assert_eq!(num(f64::NEG_INFINITY), "-Inf");
        assert_eq!(num(-0.5), "-0.5");
    }
}
