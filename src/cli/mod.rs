//! The command line of spec section 5: clap definitions, dispatch, and the mapping from
//! errors to exit codes.

mod args;
mod doctor;
mod gameday;
mod helpers;
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
    crate::run::deadman::wait_for_the_run(&std::env::args_os().collect::<Vec<_>>());
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
        Command::Plan(a) => run::plan(&a),
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
        Command::Stress(a) => Ok(helpers::stress(&a)),
        Command::Memhog(a) => Ok(helpers::memhog(&a)),
        Command::Iohog(a) => helpers::iohog(&a),
        Command::Delayer(a) => helpers::delayer(&a),
        Command::HttpProxy(a) => helpers::http_proxy(a),
        Command::Resolve(a) => Ok(helpers::resolve(&a)),
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
