//! The `command` probe: runs a program (argv, or `sh -c`) in its own process group.
//!
//! The group is always killed when the attempt ends: on timeout, when the sample is
//! dropped (an aborted run), and after a normal exit, so that background processes the
//! command left behind neither hold its output pipes open nor pile up across samples.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{Sample, fmt_latency, strip_os_error};
use crate::experiment::model::CommandProbe;

/// How much of stdout and of stderr is kept.
const OUTPUT_CAP: usize = 64 * 1024;

/// How long output readers may take after the group is gone (a process that left the
/// group with setsid can keep a pipe open).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub async fn sample(p: &CommandProbe) -> Sample {
    run(p).await.0
}

/// Runs the command; also returns the process group id, if one was started.
async fn run(p: &CommandProbe) -> (Sample, Option<i32>) {
    let (program, args): (&str, Vec<&str>) = match (&p.run, &p.shell) {
        (Some(argv), _) => match argv.split_first() {
            Some((prog, rest)) => (prog.as_str(), rest.iter().map(String::as_str).collect()),
            None => {
                return (
                    Sample::fail(Duration::ZERO, "the `run` list is empty"),
                    None,
                );
            }
        },
        (None, Some(script)) => ("sh", vec!["-c", script]),
        (None, None) => {
            return (
                Sample::fail(Duration::ZERO, "the probe has neither `run` nor `shell`"),
                None,
            );
        }
    };
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);

    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let detail = format!(
                "cannot start `{program}`: {}",
                strip_os_error(&e.to_string())
            );
            return (Sample::fail(start.elapsed(), detail), None);
        }
    };
    let Some(pgid) = child.id().map(|id| id as i32) else {
        return (
            Sample::fail(start.elapsed(), "the command vanished right after starting"),
            None,
        );
    };
    let group = GroupKill(pgid);
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());

    let waited = tokio::time::timeout(p.timeout.std(), child.wait()).await;
    let latency = start.elapsed();
    drop(group);
    let status = match waited {
        Err(_) => {
            // SIGKILL has been sent to the group; reap the leader (bounded, in case it
            // sits in uninterruptible sleep; kill_on_drop and tokio's reaper cover that).
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            let detail = format!("timed out after {} (process group killed)", p.timeout);
            return (Sample::fail(latency, detail), Some(pgid));
        }
        Ok(Err(e)) => {
            let detail = format!(
                "waiting for `{program}` failed: {}",
                strip_os_error(&e.to_string())
            );
            return (Sample::fail(latency, detail), Some(pgid));
        }
        Ok(Ok(status)) => status,
    };
    let stdout = stdout.finish().await;
    let stderr = stderr.finish().await;

    if status.code() != Some(p.exit_code) {
        let got = match status.code() {
            Some(code) => format!("exit {code}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        let mut detail = format!("{got} (expected {})", p.exit_code);
        if let Some(line) = first_line(&stderr) {
            detail.push_str(": ");
            detail.push_str(&line);
        }
        return (Sample::fail(latency, detail), Some(pgid));
    }
    if let Some(needle) = &p.stdout_contains {
        if !String::from_utf8_lossy(&stdout).contains(needle.as_str()) {
            let detail = format!("stdout does not contain `{needle}`");
            return (Sample::fail(latency, detail), Some(pgid));
        }
    }
    let detail = format!("exit {} in {}", p.exit_code, fmt_latency(latency));
    (Sample::pass(latency, detail), Some(pgid))
}

/// Sends SIGKILL to the process group when dropped.
struct GroupKill(i32);

impl Drop for GroupKill {
    fn drop(&mut self) {
        // ESRCH (the group is already gone) is the normal case after a clean exit.
        let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

/// Reads a pipe to its end in the background, keeping the first OUTPUT_CAP bytes.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Capture {
    fn start<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let task = pipe.map(|mut pipe| {
            let buf = buf.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 8192];
                // Keep draining past the cap so the command never blocks on a full pipe.
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let room = OUTPUT_CAP.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            })
        });
        Capture { buf, task }
    }

    /// Waits briefly for the pipe to close, then returns what was read.
    async fn finish(mut self) -> Vec<u8> {
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(DRAIN_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
        std::mem::take(
            &mut *self
                .buf
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The first non-empty line of the output, shortened for a detail.
fn first_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    const MAX: usize = 200;
    if line.chars().count() > MAX {
        let short: String = line.chars().take(MAX).collect();
        Some(format!("{short}…"))
    } else {
        Some(line.to_string())
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;
    use nix::sys::signal::kill;

    use super::*;

    use crate::test_support::from_json as probe;

    #[tokio::test]
    async fn argv_success() {
        let s = sample(&probe(serde_json::json!({"run": ["true"]}))).await;
        assert!(s.ok, "{s:?}");
        assert!(s.detail.starts_with("exit 0 in "), "{}", s.detail);
    }

    #[tokio::test]
    async fn exit_code_mismatch_shows_stderr() {
        let p = probe(
            serde_json::json!({"run": ["sh", "-c", "echo; echo boom >&2; echo more >&2; exit 3"]}),
        );
        let s = sample(&p).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "exit 3 (expected 0): boom");
        let p = probe(serde_json::json!({"run": ["false"]}));
        assert_eq!(sample(&p).await.detail, "exit 1 (expected 0)");
        let p = probe(serde_json::json!({"run": ["sh", "-c", "exit 3"], "exit_code": 3}));
        assert!(sample(&p).await.ok);
    }

    #[tokio::test]
    async fn stdout_contains() {
        let p =
            probe(serde_json::json!({"run": ["echo", "hello world"], "stdout_contains": "lo wo"}));
        assert!(sample(&p).await.ok);
        let p = probe(serde_json::json!({"run": ["echo", "hello"], "stdout_contains": "x"}));
        let s = sample(&p).await;
        assert!(!s.ok);
        assert_eq!(s.detail, "stdout does not contain `x`");
    }

    #[tokio::test]
    async fn shell_form() {
        let p =
            probe(serde_json::json!({"shell": "echo hi | tr a-z A-Z", "stdout_contains": "HI"}));
        let s = sample(&p).await;
        assert!(s.ok, "{s:?}");
    }

    #[tokio::test]
    async fn missing_program() {
        let p = probe(serde_json::json!({"run": ["faultline-no-such-program-xyz"]}));
        let s = sample(&p).await;
        assert!(!s.ok);
        assert_eq!(
            s.detail,
            "cannot start `faultline-no-such-program-xyz`: No such file or directory"
        );
    }

    #[tokio::test]
    async fn large_output_does_not_block() {
        // 1 MiB to stdout: more than a pipe holds and more than the cap.
        let p = probe(serde_json::json!({
            "shell": "head -c 1048576 /dev/zero | tr '\\0' a; echo; echo end",
            "timeout": "10s"
        }));
        let s = sample(&p).await;
        assert!(s.ok, "{s:?}");
    }

    #[tokio::test]
    async fn background_leftovers_do_not_hold_the_probe() {
        let p = probe(
            serde_json::json!({"shell": "sleep 30 & echo started", "stdout_contains": "started", "timeout": "5s"}),
        );
        let started = Instant::now();
        let (s, pgid) = run(&p).await;
        assert!(s.ok, "{s:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_group_gone(pgid.unwrap()).await;
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let p = probe(serde_json::json!({"shell": "sleep 30 & sleep 30", "timeout": "300ms"}));
        let started = Instant::now();
        let (s, pgid) = run(&p).await;
        let took = started.elapsed();
        assert!(!s.ok);
        assert_eq!(s.detail, "timed out after 300ms (process group killed)");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_group_gone(pgid.unwrap()).await;
    }

    /// The orphaned background `sleep` is reaped by init, so allow it a moment.
    async fn assert_group_gone(pgid: i32) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match kill(Pid::from_raw(-pgid), None) {
                Err(Errno::ESRCH) => return,
                other if Instant::now() > deadline => {
                    panic!("process group {pgid} still exists: kill(-pgid, 0) = {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
