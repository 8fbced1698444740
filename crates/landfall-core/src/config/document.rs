//! The parsed TOML document with its spans: the one place that knows where a key sits in the
//! file.
//!
//! The file is parsed once into toml's spanned tree ([`toml::de::DeTable`]). `${ENV}` is
//! substituted in that tree's string values (`env.rs`), the raw model is deserialized from it,
//! and the tree is kept to answer "which line holds this key" for every problem validation
//! finds. Lines therefore come from the parser's spans, also for keys inside inline tables and
//! arrays, never from scanning the text.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::raw::RawSink;
use super::ConfigProblem;

/// A parsed sink file: the spanned tree and the text its spans point into.
pub(super) struct Document<'a> {
    pub(super) text: &'a str,
    pub(super) root: Spanned<DeTable<'a>>,
}

impl<'a> Document<'a> {
    /// Parse TOML text; a syntax error is one problem with the line the parser points at.
    pub(super) fn parse(text: &'a str, file: &Path) -> Result<Self, ConfigProblem> {
        let root = DeTable::parse(text).map_err(|e| toml_problem(&e, text, file))?;
        Ok(Document { text, root })
    }

    /// Deserialize the raw model from the (substituted) tree. serde stops at the first unknown
    /// or missing key, so this is at most one problem.
    pub(super) fn raw(&self, file: &Path) -> Result<RawSink, ConfigProblem> {
        RawSink::deserialize(toml::de::Deserializer::from(self.root.clone()))
            .map_err(|e| toml_problem(&e, self.text, file))
    }

    /// The 1-based line of the key at `path` (array elements by index, e.g. `["format",
    /// "fields", "2", "type"]`). A key that is absent (a default) falls back to the deepest
    /// part of the path the file does have, usually its table header; `None` if not even that.
    pub(super) fn line(&self, path: &[&str]) -> Option<usize> {
        let mut found = None;
        let mut node = Node::Table(self.root.get_ref());
        for segment in path {
            let hit = match node {
                Node::Table(t) => t
                    .get_key_value(*segment)
                    .map(|(k, v)| (k.span(), v.get_ref())),
                Node::Array(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (v.span(), v.get_ref())),
            };
            let Some((span, value)) = hit else { break };
            found = Some(span);
            node = match value {
                DeValue::Table(t) => Node::Table(t),
                DeValue::Array(a) => Node::Array(a),
                _ => break,
            };
        }
        found.map(|s| line_at(self.text, s))
    }
}

/// Where a key path walk stands: in a table (keys) or an array (indices).
enum Node<'t, 'a> {
    Table(&'t DeTable<'a>),
    Array(&'t [Spanned<DeValue<'a>>]),
}

/// 1-based line of the start of `span`.
pub(super) fn line_at(text: &str, span: Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

fn toml_problem(e: &toml::de::Error, text: &str, file: &Path) -> ConfigProblem {
    let message = e.message().to_string();
    let hint = if message.contains("unknown field") {
        Some("see docs/configuration.md for every key".to_string())
    } else if message.contains("missing field") {
        Some("this key is required".to_string())
    } else {
        None
    };
    ConfigProblem {
        file: file.to_path_buf(),
        line: e.span().map(|s| line_at(text, s)),
        key: String::new(),
        message,
        hint,
    }
}
