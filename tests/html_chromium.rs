//! The HTML report in a real browser: headless Chromium (Debian's `chromium`) renders the
//! committed example report (`docs/report-example.json`, a real pause experiment) to PNG,
//! and its DOM has the timeline, with no console message and no request leaving the page.
//!
//! Chromium runs with a dead proxy on 127.0.0.1 and a resolver that finds no host, so
//! nothing leaves the machine even though the browser tries to reach its own services.
//! `FAULTLINE_UPDATE_DOCS=1` copies the screenshot to `docs/report-example.png`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Run, Skip, root, skip};

/// `$CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

fn browser_or_skip() -> Option<PathBuf> {
    let b = chromium();
    if b.is_none() {
        skip(
            Skip::Missing,
            "headless Chromium is not installed (Debian package `chromium`); \
             the HTML report was not rendered in a browser",
        );
    }
    b
}

/// Runs Chromium headless on `page` with `args`, isolated from the network, killed after
/// two minutes.
fn headless(bin: &Path, profile: &Path, page: &Path, args: &[String]) -> Output {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Console messages (errors, uncaught exceptions, failed loads) Chromium logged.
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// URLs the page asked for beyond itself; Chromium's own background requests (to Google
/// update, time and account services, all blocked here) are not the page's.
fn page_requests(net_log: &str) -> Vec<String> {
    let own = ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"];
    let mut urls: Vec<String> = net_log
        .split("\"url\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| !u.starts_with("file://") && !u.starts_with("data:"))
        .filter(|u| {
            let host = u.split("://").nth(1).unwrap_or(u);
            let host = host.split(['/', ':', '?']).next().unwrap_or(host);
            !own.iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        })
        .map(str::to_string)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

struct Inspection {
    dom: String,
    console: Vec<String>,
    requests: Vec<String>,
}

/// Loads `page`, returning its DOM after load, its console messages and its requests.
fn inspect(bin: &Path, dir: &Path, page: &Path) -> Inspection {
    let net_log = dir.join(format!(
        "{}.netlog.json",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let out = headless(
        bin,
        &dir.join("profile"),
        page,
        &[
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            format!("--log-net-log={}", net_log.display()),
            "--dump-dom".into(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    Inspection {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: console_messages(&stderr)
            .into_iter()
            .map(str::to_string)
            .collect(),
        requests: page_requests(&std::fs::read_to_string(&net_log).unwrap_or_default()),
    }
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(bin) = browser_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("docs/report-example.json");
    let page = dir.path().join("report.html");
    Run::report(&[&example], "html")
        .out(&page)
        .output()
        .expect(0);

    let png = dir.path().join("report.png");
    headless(
        &bin,
        &dir.path().join("profile"),
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,900".into(),
        ],
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 900));
    // A blank 1200x900 page compresses to a few kilobytes; the report is text and a chart.
    assert!(
        bytes.len() > 30_000,
        "the screenshot is nearly empty ({} bytes)",
        bytes.len()
    );
    if std::env::var_os("FAULTLINE_UPDATE_DOCS").is_some() {
        std::fs::copy(&png, root().join("docs/report-example.png")).unwrap();
    }

    let seen = inspect(&bin, dir.path(), &page);
    assert!(seen.dom.contains("<svg id=\"timeline\""), "{}", seen.dom);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    let samples: usize = report["phases"]["during"]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["timeline"].as_array().unwrap().len())
        .sum();
    assert!(samples > 0);
    assert_eq!(seen.dom.matches("class=\"sample\"").count(), samples);
    assert!(seen.dom.contains("class=\"fault\""));
    assert!(seen.dom.contains("recovered after"));
    assert!(
        seen.console.is_empty(),
        "console messages: {:#?}",
        seen.console
    );
    assert!(
        seen.requests.is_empty(),
        "the page requested {:#?}",
        seen.requests
    );
}

/// The console and request checks above would notice a broken page.
#[test]
fn the_browser_checks_catch_console_errors_and_external_loads() {
    let Some(bin) = browser_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><link rel=\"stylesheet\" href=\"https://cdn.example.com/x.css\">\
         </head><body><img src=\"http://example.com/x.png\" alt=\"\"><p>x</p>\
         <script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let seen = inspect(&bin, dir.path(), &page);
    assert!(
        seen.console.iter().any(|l| l.contains("Uncaught")),
        "{:#?}",
        seen.console
    );
    assert!(
        seen.requests.iter().any(|u| u.contains("example.com")),
        "{:#?}",
        seen.requests
    );
}
