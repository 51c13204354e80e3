//! `faultline report RESULT.json... --format junit|markdown|html [--out PATH]`: renders saved
//! JSON reports again, several of them into one document.

use std::path::Path;

use super::args::{ReportArgs, ReportFormat};
use super::print_stdout;
use crate::error::{Error, Exit};
use crate::report::{self, RunResult};

/// Reads one JSON report; any problem is invalid input (exit 2) naming the file.
pub(super) fn load(path: &Path) -> Result<RunResult, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let r: RunResult = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let field = if at == "." {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        Error::Usage(format!(
            "{}: not a faultline JSON report (written by `--report json`){field}: {inner}",
            path.display()
        ))
    })?;
    if r.format_version != 1 {
        return Err(Error::Usage(format!(
            "{}: report format_version {} is not supported by this faultline (it reads version 1)",
            path.display(),
            r.format_version
        )));
    }
    Ok(r)
}

/// The document for `results` in `format`.
pub(super) fn render(results: &[RunResult], format: ReportFormat) -> Result<String, Error> {
    Ok(match (format, results) {
        (ReportFormat::Junit, rs) => report::junit::render(rs),
        (ReportFormat::Html, rs) => report::html::render_many(rs),
        (ReportFormat::Markdown, [one]) => report::markdown::render(one),
        (ReportFormat::Markdown, rs) => {
            let mut out = report::markdown::render_summary(rs);
            for r in rs {
                out.push('\n');
                out.push_str(&report::markdown::render(r));
            }
            out
        }
        (ReportFormat::Table, rs) => rs
            .iter()
            .map(|r| report::table::render(r, false))
            .collect::<Vec<_>>()
            .join("\n"),
        (ReportFormat::Json, [one]) => report::json::render(one),
        (ReportFormat::Json, _) => {
            return Err(Error::Usage(
                "--format json takes one report; use junit, markdown or html to combine several"
                    .into(),
            ));
        }
    })
}

pub(super) fn run(a: &ReportArgs) -> Result<Exit, Error> {
    let results = a
        .files
        .iter()
        .map(|f| load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let text = render(&results, a.format)?;
    match &a.out {
        None => print_stdout(&text),
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text)?;
            eprintln!("faultline: wrote {}", path.display());
        }
    }
    Ok(Exit::Passed)
}
