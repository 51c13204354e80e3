//! clap definitions for every subcommand.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Chaos experiments against Docker containers and Kubernetes pods",
    long_about = "faultline loads an experiment from YAML, checks a steady-state hypothesis, injects real faults \
                  into Docker containers or Kubernetes pods, samples the hypothesis while they are active, reverts \
                  every fault, measures recovery and reports pass or fail.\n\n\
                  Exit codes: 0 passed, 1 failed, 2 invalid input, 3 not run, 4 error during the run, \
                  5 revert incomplete (run `faultline recover`), 130 interrupted.",
    propagate_version = true
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run experiments: check steady state, inject faults, revert them, report.
    Run(RunArgs),
    /// Check files statically; touches nothing.
    Validate(ValidateArgs),
    /// Print what a run would do to which target; touches nothing.
    Plan(PlanArgs),
    /// Revert every fault a crashed or killed run left behind.
    Recover(RecoverArgs),
    /// Render saved JSON reports again as JUnit, Markdown or HTML.
    Report(ReportArgs),
    /// Check Docker/Kubernetes access, kernel netem support and privileges; given an
    /// experiment, check what it needs (Kubernetes: each permission, asked of the API server).
    Doctor(DoctorArgs),
    /// Print the JSON Schema of the experiment and scenario format.
    Schema,
    /// Run a scenario: a suite of experiments, optionally on a schedule.
    Gameday(GamedayArgs),
    /// Print the least-privilege Kubernetes Role an experiment needs.
    Rbac(RbacArgs),
    /// Build a demo service locally and run a bundled experiment against it.
    Demo {
        /// Leave the demo containers running afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// A CPU stressor (started by the cpu_stress fault inside a target's cgroups).
    #[command(hide = true)]
    Stress(StressArgs),
    /// A memory stressor (started by the memory_stress fault inside a target's cgroups).
    #[command(hide = true)]
    Memhog(MemhogArgs),
    /// An I/O stressor (started by the io_stress fault inside a target's cgroups).
    #[command(hide = true)]
    Iohog(IohogArgs),
    /// The nfqueue delayer (started by a network fault inside a target's namespace).
    #[command(hide = true)]
    Delayer(DelayerArgs),
    /// The HTTP proxy (started by an http fault inside a target's namespace).
    #[command(hide = true)]
    HttpProxy(HttpProxyArgs),
    /// Resolves names as a target would (run by a network fault in its namespace).
    #[command(hide = true)]
    Resolve(ResolveArgs),
    /// The demo's web replica (runs inside the demo containers).
    #[command(hide = true)]
    DemoServe(crate::demo::ServeArgs),
    /// The demo's balancer (runs inside the demo containers).
    #[command(hide = true)]
    DemoBalance(crate::demo::BalanceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VarArgs {
    /// Set a variable, overriding the file's `vars:` (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// Read variables from a YAML mapping (repeatable; --var wins).
    #[arg(long, value_name = "FILE")]
    pub var_file: Vec<PathBuf>,
}

/// What the commands that inject share: the blast-radius confirmation, the audit log,
/// the tc image, and who observes the runs.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Confirm a large blast radius without a prompt.
    #[arg(long)]
    pub yes: bool,
    /// Append the audit log here instead of the state directory.
    #[arg(long, value_name = "PATH", env = "FAULTLINE_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Image with `tc` and `sh` for sidecar network faults (when the fault names none).
    #[arg(long, value_name = "IMAGE", env = "FAULTLINE_TC_IMAGE")]
    pub tc_image: Option<String>,
    #[command(flatten)]
    pub observe: ObserveArgs,
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// The docker CLI's connection flags. The endpoint is chosen as the docker CLI chooses it,
/// with the experiment's `target.docker.host` first and these flags next; `recover` takes
/// `-H` over the endpoint its journal recorded.
#[derive(Debug, Default, Args)]
pub struct DockerArgs {
    /// Docker daemon to reach: unix://PATH, tcp://HOST:PORT, ssh://[USER@]HOST[:PORT]
    /// (before DOCKER_HOST and docker contexts; `target.docker.host` wins).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// TLS without verifying the daemon: refused (faultline always verifies); use --tlsverify.
    #[arg(long)]
    pub tls: bool,
    /// TLS, verifying the daemon's certificate (files from DOCKER_CERT_PATH, else ~/.docker).
    #[arg(long)]
    pub tlsverify: bool,
    /// The CA that signed the daemon's certificate (implies --tlsverify).
    #[arg(long, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// faultline's client certificate (with --tlskey).
    #[arg(long, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

impl DockerArgs {
    /// Makes the flags this process's connection flags.
    pub fn install(&self) {
        crate::platform::docker_endpoint::set_flags(crate::platform::docker_endpoint::Flags {
            host: self.host.clone(),
            tls: self.tls,
            tlsverify: self.tlsverify,
            tlscacert: self.tlscacert.clone(),
            tlscert: self.tlscert.clone(),
            tlskey: self.tlskey.clone(),
        });
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// FORMAT or FORMAT:PATH, repeatable. Formats: table (default), json, junit, markdown, html.
    #[arg(long, value_name = "FORMAT[:PATH]")]
    pub report: Vec<ReportSpec>,
    /// Resolve targets and print what would happen; touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seed for target selection (overrides `target.select.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format of the problems.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
    /// Treat warnings as problems (exit 2), e.g. an unset `${env:...}` that `run` would need.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiagnosticFormat {
    /// FILE:LINE:COLUMN: message, with a source excerpt on a terminal.
    Text,
    /// A JSON array of {file, line, column, path, message}.
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Seed for target selection (overrides `target.select.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// List what would be reverted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Append the audit log here instead of the state directory.
    #[arg(long, value_name = "PATH", env = "FAULTLINE_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Only this run's entries, even while its process is alive (used by the dead-man's switch).
    #[arg(long, hide = true)]
    pub run: Option<String>,
    /// Wait until this process has exited, then recover (the dead-man's switch).
    #[arg(long, hide = true, requires = "run")]
    pub after_pid: Option<u32>,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON reports written by `faultline run --report json:PATH`.
    #[arg(required = true, value_name = "RESULT.json")]
    pub files: Vec<PathBuf>,
    /// Output format; several reports give one JUnit file with a suite each, a Markdown
    /// summary followed by each report, or one HTML page with a summary and each experiment.
    #[arg(long, value_enum)]
    pub format: ReportFormat,
    /// Write here instead of to stdout.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RbacArgs {
    /// An experiment, or a scenario (the union of its experiments' needs).
    pub file: PathBuf,
    /// The service account the RoleBindings name: NAME (in the target's namespace) or
    /// NAMESPACE/NAME.
    #[arg(long, value_name = "[NAMESPACE/]NAME", default_value = "faultline")]
    pub service_account: String,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// An experiment or scenario: check only what it needs, and ask the Kubernetes API
    /// server whether each call it makes is allowed.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct GamedayArgs {
    pub scenario: PathBuf,
    /// Where each experiment's reports and the summary go.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Stay in the foreground and run at each cron time inside the window.
    #[arg(long)]
    pub schedule: bool,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Junit,
    Markdown,
    Html,
}

/// `--report FORMAT[:PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub format: ReportFormat,
    pub path: Option<PathBuf>,
}

impl ReportSpec {
    /// The reports a run writes: the requested ones, plus the table on stdout when no
    /// report goes to stdout and stdout is a terminal (or when none was requested).
    pub fn with_terminal_table(requested: &[ReportSpec], stdout_tty: bool) -> Vec<ReportSpec> {
        let mut out = requested.to_vec();
        if !requested.iter().any(|r| r.path.is_none()) && (requested.is_empty() || stdout_tty) {
            out.push(ReportSpec {
                format: ReportFormat::Table,
                path: None,
            });
        }
        out
    }
}

impl FromStr for ReportSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (fmt, path) = match s.split_once(':') {
            Some((f, p)) if !p.is_empty() => (f, Some(PathBuf::from(p))),
            Some((_, _)) => return Err(format!("`{s}`: the path after `:` is empty")),
            None => (s, None),
        };
        let format = ReportFormat::from_str(fmt, true).map_err(|_| {
            format!("unknown report format `{fmt}`: use table, json, junit, markdown or html, optionally with :PATH")
        })?;
        Ok(ReportSpec { format, path })
    }
}

#[derive(Debug, Args)]
pub struct StressArgs {
    #[arg(long)]
    pub workers: u32,
    #[arg(long)]
    pub load: u32,
    /// Epoch second at which the stressor ends by itself.
    /// `+SECONDS` counts from when it starts, on its own clock (a helper on another machine).
    #[arg(long, value_parser = parse_until)]
    pub until: u64,
    /// Names this stressor, so that revert finds exactly it.
    #[arg(long)]
    pub marker: String,
}

#[derive(Debug, Args)]
pub struct MemhogArgs {
    /// How many bytes to allocate and touch.
    #[arg(long)]
    pub bytes: u64,
    /// Spread the allocation over this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub ramp_ms: u64,
    /// Epoch second at which the stressor ends by itself.
    /// `+SECONDS` counts from when it starts, on its own clock (a helper on another machine).
    #[arg(long, value_parser = parse_until)]
    pub until: u64,
    /// Names this stressor, so that revert finds exactly it.
    #[arg(long)]
    pub marker: String,
}

#[derive(Debug, Args)]
pub struct IohogArgs {
    /// The target's root as this host sees it (`/proc/PID/root`).
    #[arg(long)]
    pub root: PathBuf,
    /// The directory inside the target, resolved inside `root`.
    #[arg(long)]
    pub path: String,
    /// The workers' files in it, one per worker (repeatable).
    #[arg(long = "file")]
    pub files: Vec<String>,
    /// The bytes of each file (whole MiB).
    #[arg(long)]
    pub bytes: u64,
    /// `write`, `read` or `mixed`.
    #[arg(long)]
    pub mode: String,
    /// Epoch second at which the stressor removes its files and ends by itself.
    /// `+SECONDS` counts from when it starts, on its own clock (a helper on another machine).
    #[arg(long, value_parser = parse_until)]
    pub until: u64,
    /// Names this stressor, so that revert finds exactly it.
    #[arg(long)]
    pub marker: String,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[arg(long)]
    pub nameserver: Vec<std::net::IpAddr>,
    #[arg(long)]
    pub search: Vec<String>,
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HttpProxyArgs {
    /// The port it listens on (the redirect's target).
    #[arg(long)]
    pub listen: u16,
    /// The server's port, reached at 127.0.0.1.
    #[arg(long)]
    pub upstream: u16,
    /// What it does to requests, as JSON.
    #[arg(long)]
    pub rules: String,
    /// Epoch second at which it removes its redirect and ends by itself.
    /// `+SECONDS` counts from when it starts, on its own clock (a helper on another machine).
    #[arg(long, value_parser = parse_until)]
    pub until: u64,
    /// The process whose death makes it fail open (faultline); 0 disables the check (PID 1
    /// of a Kubernetes ephemeral container has no parent).
    #[arg(long)]
    pub parent: u32,
    /// Where it writes its counters.
    #[arg(long)]
    pub counters: PathBuf,
    /// Names this proxy and its redirect, so that revert finds exactly them.
    #[arg(long)]
    pub marker: String,
}

#[derive(Debug, Args)]
pub struct DelayerArgs {
    #[arg(long)]
    pub queue: u16,
    #[arg(long, default_value_t = 0)]
    pub delay_us: u64,
    #[arg(long, default_value_t = 0)]
    pub jitter_us: u64,
    /// Probability of dropping a packet, 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Probability of flipping one bit of a packet, 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub corrupt: f64,
    /// Probability of sending a packet twice, 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// Probability that a packet skips the delay, 0.0..=1.0.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// With `reorder`: only every Nth packet may skip the delay.
    #[arg(long, default_value_t = 0)]
    pub reorder_gap: u32,
    /// DNS names (globs) whose answers fail.
    #[arg(long)]
    pub dns_name: Vec<String>,
    /// How they fail: nxdomain, servfail or timeout.
    #[arg(long)]
    pub dns_mode: Option<String>,
    /// Share of matching answers that fail, 0.0..=1.0.
    #[arg(long, default_value_t = 1.0)]
    pub dns_percent: f64,
    /// Epoch second at which the delayer ends by itself.
    /// `+SECONDS` counts from when it starts, on its own clock (a helper on another machine).
    #[arg(long, value_parser = parse_until)]
    pub until: u64,
    /// Names this delayer, so that revert finds exactly it.
    #[arg(long)]
    pub marker: String,
}

/// Where a run's results go besides its reports.
#[derive(Debug, Clone, Default, Args)]
pub struct ObserveArgs {
    /// Write the run's metrics in the Prometheus text format (node_exporter textfile).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Push the run's metrics to a Prometheus Pushgateway (job `faultline`).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// POST a JSON summary (with a Slack-compatible `text`) when a run starts and ends
    /// (repeatable). Failures are logged and never change the verdict.
    #[arg(long, value_name = "URL")]
    pub notify: Vec<String>,
}

/// `--until`: an epoch second, or `+SECONDS` from now.
fn parse_until(s: &str) -> Result<u64, String> {
    match s.strip_prefix('+') {
        Some(secs) => secs
            .parse::<u64>()
            .map(|secs| crate::platform::host::deadline(std::time::Duration::from_secs(secs)))
            .map_err(|e| format!("`{s}`: {e}")),
        None => s.parse::<u64>().map_err(|e| format!("`{s}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn until_is_an_epoch_second_or_seconds_from_now() {
        assert_eq!(parse_until("1700000000"), Ok(1_700_000_000));
        let now = crate::platform::host::deadline(std::time::Duration::ZERO);
        let later = parse_until("+30").unwrap();
        assert!((now + 30..=now + 31).contains(&later), "{later} vs {now}");
        assert!(parse_until("+x").is_err() && parse_until("soon").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Regression: `--report json:PATH` hid the table on a terminal.
    #[test]
    fn the_table_stays_on_a_terminal_when_reports_go_to_files() {
        let specs = |args: &[&str]| -> Vec<ReportSpec> {
            args.iter().map(|a| a.parse().unwrap()).collect()
        };
        let table = "table".parse::<ReportSpec>().unwrap();
        let to_file = specs(&["json:r.json", "html:r.html"]);
        let shown = ReportSpec::with_terminal_table(&to_file, true);
        assert_eq!(shown.len(), 3);
        assert_eq!(shown.last(), Some(&table));
        // Piped: stdout carries nothing the user did not ask for.
        assert_eq!(ReportSpec::with_terminal_table(&to_file, false), to_file);
        // A report on stdout replaces the table.
        let json = specs(&["json"]);
        assert_eq!(ReportSpec::with_terminal_table(&json, true), json);
        // Nothing requested: the table, terminal or not.
        assert_eq!(
            ReportSpec::with_terminal_table(&[], false),
            vec![table.clone()]
        );
        assert_eq!(ReportSpec::with_terminal_table(&[], true), vec![table]);
    }

    #[test]
    fn report_specs() {
        assert_eq!(
            "json:out/r.json".parse::<ReportSpec>().unwrap(),
            ReportSpec {
                format: ReportFormat::Json,
                path: Some("out/r.json".into())
            }
        );
        assert_eq!("table".parse::<ReportSpec>().unwrap().path, None);
        assert!("pdf".parse::<ReportSpec>().is_err());
        assert!("json:".parse::<ReportSpec>().is_err());
    }
}
