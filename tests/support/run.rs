//! One way to run the binary and read what it did: [`Run`] builds the command line,
//! [`Outcome`] holds the exit code, stdout, stderr and the JSON report, [`Running`] is a run
//! in the background that a test can signal.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::docker::TC_IMAGE;
use super::experiment::Experiment;

/// `faultline ARGS`, with its own scratch directory (experiment file, JSON report) and its
/// journal and audit log kept out of the user's state directory.
pub struct Run {
    cmd: Command,
    dir: TempDir,
    report: Option<PathBuf>,
}

impl Run {
    pub fn new<I, S>(args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
        cmd.args(args)
            .env("FAULTLINE_LOG", "faultline=warn")
            .env(
                "FAULTLINE_STATE_DIR",
                super::root().join("target/test-state"),
            )
            .stdin(Stdio::null());
        Run {
            cmd,
            dir: tempfile::tempdir().unwrap(),
            report: None,
        }
    }

    /// `faultline run FILE` on the experiment, written into this run's directory.
    pub fn experiment(exp: &Experiment) -> Run {
        let run = Run::new(["run"]);
        let file = exp.write(run.dir.path());
        run.arg(file)
    }

    /// `faultline validate FILE` on the experiment, written into this run's directory.
    pub fn validate(exp: &Experiment) -> Run {
        let run = Run::new(["validate"]);
        let file = exp.write(run.dir.path());
        run.arg(file)
    }

    /// Runs `exp`, which must fail to inject its first fault (exit 4), and returns that
    /// fault's error as the JSON report gives it.
    pub fn refusal(exp: &Experiment) -> String {
        let out = Run::experiment(exp).json_report().output();
        out.expect(4);
        out.report()["faults"][0]["error"]
            .as_str()
            .expect("the first fault has an error")
            .to_string()
    }

    /// `faultline report FILES --format FORMAT`.
    pub fn report<P: AsRef<OsStr>>(files: &[P], format: &str) -> Run {
        Run::new(["report"]).args(files).args(["--format", format])
    }

    /// `faultline run` with a network fault's helper image (no registry is reachable).
    pub fn with_tc_image(exp: &Experiment) -> Run {
        Run::experiment(exp).args(["--tc-image", TC_IMAGE])
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Run {
        self.cmd.env_remove(key);
        self
    }

    /// Journal and audit state in `state` (shared with later `recover` runs).
    pub fn state(self, state: &StateDir) -> Run {
        self.env("FAULTLINE_STATE_DIR", state.path())
    }

    /// Without the dead-man's switch, so a killed run leaves its faults for `recover`.
    pub fn no_dead_mans_switch(self) -> Run {
        self.env("FAULTLINE_NO_DEAD_MANS_SWITCH", "1")
    }

    /// `--report json:PATH` into this run's directory; [`Outcome::report`] reads it.
    pub fn json_report(mut self) -> Run {
        let path = self.dir.path().join("report.json");
        self.cmd
            .arg("--report")
            .arg(format!("json:{}", path.display()));
        self.report = Some(path);
        self
    }

    /// `--report json`: the report on stdout.
    pub fn json_on_stdout(self) -> Run {
        self.args(["--report", "json"])
    }

    /// `--out PATH`.
    pub fn out(self, path: &Path) -> Run {
        self.arg("--out").arg(path)
    }

    /// Runs to the end.
    pub fn output(self) -> Outcome {
        self.spawn().wait()
    }

    /// Runs to the end, asserts the exit code and returns the checked JSON report.
    #[track_caller]
    pub fn expect_report(self, code: i32) -> Value {
        self.output().expect(code).report()
    }

    /// Starts in the background and waits (15 s at most) until `ready` holds: the fault
    /// is in place. Otherwise the run is killed and the test fails, naming `what` was
    /// awaited and showing what faultline said.
    #[track_caller]
    pub fn spawn_until(self, what: &str, ready: impl FnMut() -> bool) -> Running {
        let running = self.spawn();
        if !super::docker::wait_until(Duration::from_secs(15), ready) {
            running.signal(nix::sys::signal::Signal::SIGINT);
            let out = running.wait();
            panic!(
                "{what} did not appear within 15 s; faultline said:\n{}",
                out.stderr
            );
        }
        running
    }

    /// Runs with a journal of its own and no dead-man's switch until `ready` holds, then
    /// SIGKILLs faultline as a crash would: what it left is for the test to look at, and
    /// for `recover` through the returned state dir.
    #[track_caller]
    pub fn sigkilled_once(self, what: &str, ready: impl FnMut() -> bool) -> StateDir {
        let state = StateDir::new();
        let running = self
            .state(&state)
            .no_dead_mans_switch()
            .spawn_until(what, ready);
        running.signal(nix::sys::signal::Signal::SIGKILL);
        running.wait();
        state
    }

    /// Starts in the background; stdout and stderr are collected as they come.
    pub fn spawn(mut self) -> Running {
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the faultline binary starts");
        let drain = |mut r: Box<dyn Read + Send>| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = buf.clone();
            let reader = std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = r.read(&mut chunk) {
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            Drained { buf, reader }
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            stdout,
            stderr,
            report: self.report,
            _dir: self.dir,
        }
    }
}

/// A faultline process running in the background.
pub struct Running {
    child: Child,
    stdout: Drained,
    stderr: Drained,
    report: Option<PathBuf>,
    _dir: TempDir,
}

/// One output stream, read as it comes by a thread of its own.
struct Drained {
    buf: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Drained {
    /// What was written; waits at most 5s for the end of the stream after the process
    /// exited (a helper that inherited the pipe must not hang the test).
    fn text(self) -> String {
        let end = Instant::now() + Duration::from_secs(5);
        while !self.reader.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

impl Running {
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(self.pid(), signal);
    }

    /// SIGINT, as Ctrl-C sends.
    pub fn interrupt(&self) {
        self.signal(nix::sys::signal::Signal::SIGINT);
    }

    pub fn wait(mut self) -> Outcome {
        let status = self.child.wait().unwrap();
        Outcome {
            code: status.code(),
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
            report: self
                .report
                .map(|p| std::fs::read_to_string(&p).unwrap_or_default()),
        }
    }
}

/// What a finished run left: exit code, output and (with [`Run::json_report`]) the report.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    report: Option<String>,
}

impl Outcome {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Outcome {
        super::assert_contains(&self.stdout, &[text]);
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Outcome {
        super::assert_contains(&self.stderr, &[text]);
        self
    }

    /// The report's text: the `--report json:PATH` file, else stdout (`--report json`).
    pub fn report_text(&self) -> &str {
        self.report.as_deref().unwrap_or(&self.stdout)
    }

    /// The JSON report, checked against the spec (every field, and the exit code).
    #[track_caller]
    pub fn report(&self) -> Value {
        let r: Value = serde_json::from_str(self.report_text()).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\n{}\n--- stderr\n{}",
                self.report_text(),
                self.stderr
            )
        });
        super::assert_spec_report(&r);
        r
    }
}

/// A journal and audit-log directory shared by a run and the `recover` that follows it.
pub struct StateDir {
    dir: TempDir,
}

impl StateDir {
    pub fn new() -> StateDir {
        StateDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `faultline recover`, which must succeed.
    #[track_caller]
    pub fn recover(&self) -> Outcome {
        let out = Run::new(["recover"]).state(self).output();
        out.expect(0);
        out
    }

    /// Journal entries `recover --dry-run` would still revert.
    pub fn open_entries(&self) -> usize {
        let out = Run::new(["recover", "--dry-run"]).state(self).output();
        out.stdout
            .lines()
            .filter(|l| l.starts_with("would revert"))
            .count()
    }

    /// Whether `recover --dry-run` says there is nothing to recover.
    pub fn is_clean(&self) -> bool {
        Run::new(["recover", "--dry-run"])
            .state(self)
            .output()
            .stdout
            .contains("Nothing to recover")
    }
}

impl Default for StateDir {
    fn default() -> StateDir {
        StateDir::new()
    }
}
