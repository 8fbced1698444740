//! Problem reporting: one [`ConfigProblem`] per thing wrong, each with file, line, key and hint,
//! and [`ConfigErrors`], every problem of one file, so `landfall validate` reports them all.

use std::fmt;
use std::path::{Path, PathBuf};

use super::document::Document;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A key path as problems show it: `kafka.options.group.id`, `format.fields[2].type`.
pub(super) fn dotted<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for segment in path {
        let segment = segment.as_ref();
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// Collects the problems of one file while validation runs, each pointed at its key's line.
pub(super) struct Problems<'a> {
    pub(super) file: &'a Path,
    pub(super) doc: &'a Document<'a>,
    pub(super) list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    /// A problem with the key at `path` (array elements by index: `["format", "fields", "2"]`).
    pub(super) fn add(&mut self, path: &[&str], message: impl Into<String>, hint: Option<&str>) {
        self.list.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: self.doc.line(path),
            key: dotted(path),
            message: message.into(),
            hint: hint.map(String::from),
        });
    }
}
