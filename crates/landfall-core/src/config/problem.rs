//! Problem reporting: one [`ConfigProblem`] per thing wrong, each with file, line, key and hint,
//! and [`ConfigErrors`], every problem of one file, so `landfall validate` reports them all.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// Find the line of `key` inside table `table` (dotted, "" for the root) in TOML source.
/// Used to point validation problems at a line; a best effort that falls back to the table header.
pub fn line_of(source: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    let mut table_line = None;
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') && !line.starts_with("[[") {
            current = line
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
            if current == table {
                table_line = Some(i + 1);
            }
            continue;
        }
        if current == table {
            if let Some((k, _)) = line.split_once('=') {
                let k = k.trim().trim_matches('"');
                if k == key {
                    return Some(i + 1);
                }
            }
        }
    }
    table_line
}

pub(super) fn line_from_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Collects the problems of one file while validation runs.
pub(super) struct Problems<'a> {
    pub(super) file: &'a Path,
    pub(super) source: &'a str,
    pub(super) list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    pub(super) fn add(
        &mut self,
        table: &str,
        key: &str,
        message: impl Into<String>,
        hint: Option<&str>,
    ) {
        let dotted = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        self.list.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: line_of(self.source, table, key),
            key: dotted,
            message: message.into(),
            hint: hint.map(String::from),
        });
    }
}
