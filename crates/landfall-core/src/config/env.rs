//! `${ENV}` substitution: secrets and per-deployment values come from the environment, not from
//! the file.
//!
//! Substitution happens in the parsed document's string values, after TOML parsing: a value is
//! inserted as the string's content, so a password holding `"` or `\` arrives byte for byte and
//! can never change the file's structure. Keys, numbers, booleans and comments are never
//! substituted.

use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::document::{line_at, Document};
use super::problem::dotted;
use super::ConfigProblem;

/// Substitute `${NAME}` in every string value of `doc`; `$${` escapes a literal `${`.
/// Unset variables are problems (a silently empty password is worse than a clear error).
pub(super) fn substitute_env(
    doc: &mut Document<'_>,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<ConfigProblem> {
    let mut walk = Walk {
        text: doc.text,
        file,
        lookup,
        path: Vec::new(),
        problems: Vec::new(),
    };
    walk.table(doc.root.get_mut());
    walk.problems
}

/// A walk over the document's values, remembering the key path for problem reports.
struct Walk<'w> {
    text: &'w str,
    file: &'w Path,
    lookup: &'w dyn Fn(&str) -> Option<String>,
    path: Vec<String>,
    problems: Vec<ConfigProblem>,
}

impl Walk<'_> {
    fn table(&mut self, table: &mut DeTable<'_>) {
        for (key, value) in table.iter_mut() {
            self.path.push(key.get_ref().to_string());
            self.value(value);
            self.path.pop();
        }
    }

    fn value(&mut self, value: &mut Spanned<DeValue<'_>>) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(s) if s.contains('$') => {
                let (text, bad) = substitute(s, self.lookup);
                *s = text.into();
                for (message, hint) in bad {
                    self.problems.push(ConfigProblem {
                        file: self.file.to_path_buf(),
                        line: Some(line_at(self.text, span.clone())),
                        key: dotted(&self.path),
                        message,
                        hint: Some(hint),
                    });
                }
            }
            DeValue::Table(t) => self.table(t),
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.path.push(i.to_string());
                    self.value(item);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }
}

/// One string value with its references replaced, and (message, hint) of each bad reference.
fn substitute(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(value.len());
    let mut problems = Vec::new();
    let mut rest = value;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            problems.push((
                "unterminated `${` reference".into(),
                "close it with `}`, or write `$${` for a literal `${`".into(),
            ));
            out.push_str(rest);
            return (out, problems);
        };
        let name = &after[..end];
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match (valid, lookup(name)) {
            (true, Some(v)) => out.push_str(&v),
            (true, None) => problems.push((
                format!("environment variable `{name}` is not set"),
                format!("export {name}=... before starting landfall"),
            )),
            (false, _) => problems.push((
                format!("`${{{name}}}` is not a valid variable reference"),
                "names are letters, digits and `_`; write `$${` for a literal `${`".into(),
            )),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(value: &str) -> (String, Vec<(String, String)>) {
        substitute(value, &|name| {
            (name == "PW").then(|| "pa\"ss\\word".to_string())
        })
    }

    #[test]
    fn references_escapes_and_bad_names() {
        assert_eq!(sub("a${PW}b").0, "apa\"ss\\wordb");
        assert_eq!(sub("$${HOME}").0, "${HOME}");
        assert_eq!(sub("costs $5").0, "costs $5");
        let (_, problems) = sub("${NOPE} ${bad-name} ${PW");
        let messages: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            messages,
            [
                "environment variable `NOPE` is not set",
                "`${bad-name}` is not a valid variable reference",
                "unterminated `${` reference"
            ]
        );
    }
}
