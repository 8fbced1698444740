//! `${ENV}` substitution: secrets and per-deployment values come from the environment, never
//! from the file.

use std::path::Path;

use super::ConfigProblem;

/// Substitute `${NAME}` with the environment's value; `$${` escapes a literal `${`.
/// Unset variables are problems (a silently empty password is worse than a clear error).
pub fn substitute_env(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<ConfigProblem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        // Comments are left alone: a variable named in a comment need not be set.
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            if rest[..pos].ends_with('$') {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    match (valid, lookup(name)) {
                        (true, Some(value)) => out.push_str(&value),
                        (true, None) => problems.push(ConfigProblem {
                            file: file.to_path_buf(),
                            line: Some(lineno + 1),
                            key: String::new(),
                            message: format!("environment variable `{name}` is not set"),
                            hint: Some(format!("export {name}=... before starting landfall")),
                        }),
                        (false, _) => problems.push(ConfigProblem {
                            file: file.to_path_buf(),
                            line: Some(lineno + 1),
                            key: String::new(),
                            message: format!("`${{{name}}}` is not a valid variable reference"),
                            hint: Some(
                                "names are letters, digits and `_`; write `$${` for a literal `${`"
                                    .into(),
                            ),
                        }),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    problems.push(ConfigProblem {
                        file: file.to_path_buf(),
                        line: Some(lineno + 1),
                        key: String::new(),
                        message: "unterminated `${` reference".into(),
                        hint: Some("close it with `}`, or write `$${` for a literal `${`".into()),
                    });
                    out.push_str(rest);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
