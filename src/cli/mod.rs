//! The command line of spec section 5: clap definitions, dispatch, and the mapping from
//! errors to exit codes.

mod args;
mod doctor;
mod gameday;
mod progress;
mod rbac;
mod recover;
mod report;
mod run;
mod validate;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub use args::{Cli, Command, ReportFormat, ReportSpec};

use crate::error::{Error, Exit};
use crate::experiment::{self, Diagnostic, VarOverrides};

pub fn main() -> ExitCode {
    // One TLS crypto provider for kube and reqwest alike (two installed make kube panic).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    let exit = match dispatch(cli) {
        Ok(exit) => exit,
        Err(e) => {
            report_error(&e);
            e.exit()
        }
    };
    crate::platform::docker::close_ssh_forwards();
    exit.into()
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("faultline={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> Result<Exit, Error> {
    match &cli.command {
        Command::Run(a) => a.session.docker.install(),
        Command::Gameday(a) => a.session.docker.install(),
        Command::Plan(a) => a.docker.install(),
        Command::Doctor(a) => a.docker.install(),
        Command::Recover(a) => a.docker.install(),
        _ => {}
    }
    match cli.command {
        Command::Validate(a) => validate::run(&a),
        Command::Plan(a) => {
            let overrides = a.vars.overrides()?;
            let loaded =
                experiment::load_experiment(&a.file, &overrides).map_err(Error::Invalid)?;
            let (out, exit) = run::runtime().block_on(crate::run::dry_run::plan(&loaded, a.seed));
            print_stdout(&out);
            if exit == Exit::Error {
                eprintln!(
                    "faultline: the platform could not be reached; a run would fail (exit 4)"
                );
            }
            Ok(exit)
        }
        Command::Run(a) => run::run(&a),
        Command::Schema => {
            print_stdout(&crate::schema::json());
            Ok(Exit::Passed)
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "faultline", &mut std::io::stdout());
            Ok(Exit::Passed)
        }
        Command::Recover(a) => recover::run(&a),
        Command::Report(a) => report::run(&a),
        Command::Doctor(a) => doctor::run(&a),
        Command::Gameday(a) => gameday::run(&a),
        Command::Rbac(a) => rbac::run(&a),
        Command::Demo { keep } => run::demo(keep),
        Command::Stress(a) => {
            crate::platform::host::stop_self_if_asked();
            crate::fault::cpu_stress::burn(a.workers, a.load, a.until);
            Ok(Exit::Passed)
        }
        Command::Memhog(a) => {
            crate::platform::host::stop_self_if_asked();
            let ramp = std::time::Duration::from_millis(a.ramp_ms);
            crate::fault::memory_stress::hold(a.bytes, ramp, a.until);
            Ok(Exit::Passed)
        }
        Command::Iohog(a) => {
            crate::platform::host::stop_self_if_asked();
            let mode = experiment::model::IoMode::from_arg(&a.mode)
                .ok_or_else(|| Error::Platform(format!("unknown I/O mode `{}`", a.mode)))?;
            crate::fault::io_stress::churn(&a.root, &a.path, &a.files, a.bytes, mode, a.until)
                .map_err(|e| Error::Platform(format!("the I/O stressor failed: {e}")))?;
            Ok(Exit::Passed)
        }
        Command::Delayer(a) => {
            crate::platform::host::stop_self_if_asked();
            let shape = crate::fault::nfqueue::Shape {
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
                Some(m) => Some(crate::fault::dns::DnsRewrite {
                    names: a.dns_name.clone(),
                    mode: serde_json::from_value(serde_json::Value::String(m.to_string()))
                        .map_err(|_| Error::Platform(format!("unknown --dns-mode `{m}`")))?,
                    percent: a.dns_percent.clamp(0.0, 1.0),
                }),
            };
            crate::fault::nfqueue::run_delayer(a.queue, shape, a.until, dns)
                .map_err(|e| Error::Platform(format!("the delayer failed: {e}")))?;
            Ok(Exit::Passed)
        }
        Command::HttpProxy(a) => {
            crate::platform::host::stop_self_if_asked();
            let rules = serde_json::from_str(&a.rules)
                .map_err(|e| Error::Platform(format!("invalid --rules: {e}")))?;
            crate::fault::http_proxy::run_proxy(crate::fault::http_proxy::ProxyArgs {
                listen: a.listen,
                upstream: a.upstream,
                rules,
                until: a.until,
                marker: a.marker.clone(),
                parent: a.parent,
                counters: a.counters.clone(),
            })
            .map_err(|e| Error::Platform(format!("the HTTP proxy failed: {e}")))?;
            Ok(Exit::Passed)
        }
        Command::Resolve(a) => {
            print!(
                "{}",
                crate::fault::resolve::run_resolve(&a.nameserver, &a.search, &a.names)
            );
            Ok(Exit::Passed)
        }
        Command::DemoServe(a) => Ok(exit_of(crate::demo::serve_main(a))),
        Command::DemoBalance(a) => Ok(exit_of(crate::demo::balance_main(a))),
    }
}

fn exit_of(code: ExitCode) -> Exit {
    if code == ExitCode::SUCCESS {
        Exit::Passed
    } else {
        Exit::Error
    }
}

/// Writes to stdout, ignoring a closed pipe (`faultline schema | head`).
pub(crate) fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints diagnostics to stderr, with a source excerpt when stderr is a terminal.
pub(crate) fn print_diagnostics(diags: &[Diagnostic]) {
    let tty = std::io::stderr().is_terminal();
    let mut err = std::io::stderr().lock();
    let mut sources: std::collections::HashMap<String, Option<String>> = Default::default();
    for d in diags {
        let source = if tty {
            sources
                .entry(d.file.clone())
                .or_insert_with(|| std::fs::read_to_string(&d.file).ok())
                .as_deref()
        } else {
            None
        };
        let _ = writeln!(err, "{}", d.render(source));
    }
}

fn report_error(e: &Error) {
    match e {
        Error::Invalid(diags) => {
            print_diagnostics(diags);
            let files: std::collections::BTreeSet<&str> =
                diags.iter().map(|d| d.file.as_str()).collect();
            eprintln!(
                "faultline: {} problem(s) in {} file(s); nothing was touched",
                diags.len(),
                files.len()
            );
        }
        other => eprintln!("faultline: error: {other}"),
    }
}

impl args::VarArgs {
    pub fn overrides(&self) -> Result<VarOverrides, Error> {
        let mut vars = Vec::new();
        for v in &self.var {
            vars.push(experiment::Vars::parse_assignment(v).map_err(Error::Usage)?);
        }
        Ok(VarOverrides {
            files: self.var_file.clone(),
            vars,
            unset_env_is_warning: false,
        })
    }
}

impl args::ObserveArgs {
    pub(crate) fn options(&self) -> crate::run::observers::ObserveOptions {
        crate::run::observers::ObserveOptions {
            metrics_file: self.metrics_file.clone(),
            pushgateway: self.pushgateway.clone(),
            notify: self.notify.clone(),
        }
    }
}
