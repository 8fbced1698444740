//! Secrets never print: which option keys hold secrets, and the `Debug` form of an options map
//! that hides their values.
//!
//! Configs end up in logs (`{:?}` of a struct that holds one) and problem reports end up in CI
//! output and chat; a password must reach neither. The rule is by key name and errs on the side
//! of hiding: a hidden value that was harmless costs nothing, a printed password is an incident.

use std::collections::BTreeMap;
use std::fmt;

use toml::de::DeValue;
use toml::Spanned;

use super::document::Document;
use super::ConfigProblem;

/// What is printed instead of a secret value.
pub const REDACTED: &str = "<redacted>";

/// Parts of option keys (lowercase) that mark the value as a secret: librdkafka's
/// `sasl.password`, `ssl.key.password`, `ssl.keystore.password`, `ssl.key.pem`,
/// `sasl.oauthbearer.client.secret`, `sasl.oauthbearer.config`; object_store's
/// `aws_secret_access_key`, `aws_session_token`, `google_service_account_key`,
/// `google_bearer_token`, `azure_storage_account_key`; and anything else that says so.
const SECRET_PARTS: [&str; 8] = [
    "password",
    "secret",
    "token",
    "credential",
    "account_key",
    "key.pem",
    "private_key",
    "oauthbearer.config",
];

/// Whether the value of option `key` is a secret that must never be printed. A key ending in
/// `_file` (`password_file`, `client_secret_file`) holds a path, which prints, so a problem can
/// say which file it could not read; the file's content is a [`super::Secret`].
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.ends_with("_file") && SECRET_PARTS.iter().any(|part| key.contains(part))
}

/// `Debug` of an options map with the values of secret keys replaced by [`REDACTED`].
pub struct RedactedOptions<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown: &dyn fmt::Debug = if is_secret_key(k) { &REDACTED } else { v };
                (k, shown)
            }))
            .finish()
    }
}

/// Every secret value in `doc`: under a secret-looking key, each string as parsed (after
/// `${ENV}` substitution) and each other value as written (`12345678`), because the parser's
/// type errors quote what they found.
pub(super) fn secret_values(doc: &Document<'_>) -> Vec<String> {
    fn collect(
        key: &str,
        value: &Spanned<DeValue<'_>>,
        secret: bool,
        text: &str,
        out: &mut Vec<String>,
    ) {
        let secret = secret || is_secret_key(key);
        match value.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    collect(k.get_ref(), v, secret, text, out);
                }
            }
            DeValue::Array(items) => {
                for v in items.iter() {
                    collect("", v, secret, text, out);
                }
            }
            DeValue::String(s) if secret => out.push(s.to_string()),
            _ if secret => out.extend(text.get(value.span()).map(String::from)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in doc.root.get_ref().iter() {
        collect(k.get_ref(), v, false, doc.text, &mut out);
    }
    out
}

/// `problem` with every secret in its message and hint replaced by [`REDACTED`].
pub(super) fn scrub_problem(mut problem: ConfigProblem, secrets: &[String]) -> ConfigProblem {
    problem.message = scrub(&problem.message, secrets);
    problem.hint = problem.hint.map(|h| scrub(&h, secrets));
    problem
}

/// Replace every occurrence of a secret in `text` (as written, and as `Debug` escapes it).
/// Longest first, so a secret that contains another is hidden whole.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .flat_map(|s| [s.clone(), s.escape_debug().to_string()])
        .filter(|s| !s.is_empty())
        .collect();
    forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
    forms
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "aws_secret_access_key",
            "secret_access_key",
            "aws_session_token",
            "session_token",
            "google_service_account_key",
            "service_account_key",
            "google_bearer_token",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "my_credentials",
            "key_password",
            "client_secret",
            "password",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "aws_region",
            "aws_access_key_id",
            "sasl.username",
            "client.id",
            "password_file",
            "client_secret_file",
            "key_password_file",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn scrub_hides_plain_and_escaped_forms() {
        let secrets = vec!["pa\"ss".to_string(), "pa\"ssword".to_string()];
        let out = scrub(r#"got "pa\"ssword" and pa"ss"#, &secrets);
        assert_eq!(out, r#"got "<redacted>" and <redacted>"#);
    }
}
