//! A problem in a file, located by line and column, and how it is shown to a user.

use std::fmt::Write as _;

use serde::Serialize;

use super::node::Pos;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Where in the document, e.g. `faults[0].pause.duration`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &str, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: None,
            message: message.into(),
        }
    }

    pub fn with_path(mut self, path: String) -> Self {
        if !path.is_empty() {
            self.path = Some(path);
        }
        self
    }

    /// `FILE:LINE:COLUMN: message`, the form editors and CI annotate.
    pub fn headline(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", self.file, self.message),
            _ => format!("{}: {}", self.file, self.message),
        }
    }

    /// The headline and, given the source, the line with a caret under the column.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.headline();
        let (Some(src), Some(line), Some(col)) = (source, self.line, self.column) else {
            return out;
        };
        let Some(text) = src.lines().nth(line.saturating_sub(1) as usize) else {
            return out;
        };
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let caret_pad: String = text
            .chars()
            .take(col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = write!(out, "\n{pad} |\n{line} | {text}\n{pad} | {caret_pad}^");
        if let Some(path) = &self.path {
            let _ = write!(out, " {path}");
        }
        out
    }
}
