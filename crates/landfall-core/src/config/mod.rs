//! Sink configuration: one TOML file per sink, parsed strictly and validated once.
//!
//! Each concern has its own room:
//!
//! - `raw.rs`: the file model serde fills in (`deny_unknown_fields`; what the TOML says).
//! - [`defaults`]: the value of every optional key.
//! - `document.rs`: the parsed TOML with its spans; the line of every key comes from here.
//! - `env.rs`: `${ENV}` substitution.
//! - `validate.rs`: one function per section, raw model in, validated model or problems out.
//! - `model.rs`: the validated model ([`SinkConfig`] and its sections) the rest of Landfall uses.
//! - `sinks.rs`: [`check_sinks`], the checks across the sinks of one process.
//! - `security.rs`: `[kafka.security]` and `store.sse*`: secrets from files, and the mapping
//!   onto librdkafka properties and object_store options.
//! - `redact.rs`: which option values are secrets; they never print, in `Debug` or problems.
//! - `problem.rs`: [`ConfigProblem`] and [`ConfigErrors`], each problem with file, line and hint.
//!
//! [`SinkConfig::load`] turns a file into a validated [`SinkConfig`] or a list of every
//! [`ConfigProblem`] found, so `landfall validate` can report all of them in one go.

use std::path::{Path, PathBuf};

pub mod defaults;
mod document;
mod env;
mod model;
mod problem;
mod raw;
mod redact;
mod security;
mod sinks;
mod validate;

pub use model::*;
pub use problem::{ConfigErrors, ConfigProblem};
pub use redact::{is_secret_key, RedactedOptions, REDACTED};
pub use security::{
    KafkaSecurity, SaslSettings, ScramHash, Secret, SecurityProtocol, StoreEncryption, TlsSettings,
    ENCRYPTION_MANAGED_OPTIONS, SECURITY_MANAGED_OPTIONS,
};
pub use sinks::check_sinks;

use document::Document;

impl SinkConfig {
    /// Read, parse, substitute `${ENV}` and validate one sink file.
    pub fn load(path: &Path) -> Result<SinkConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigProblem {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
                hint: None,
            }])
        })?;
        Self::from_toml(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parse and validate TOML text; `file` is only used in problem reports.
    pub fn from_toml(
        text: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SinkConfig, ConfigErrors> {
        let one = |p| ConfigErrors(vec![p]);
        let mut doc = Document::parse(text, file).map_err(one)?;
        let env_problems = env::substitute_env(&mut doc, file, env);
        let checked = if env_problems.is_empty() {
            doc.raw(file)
                .map_err(one)
                .and_then(|raw| validate::validate(raw, &doc, file))
        } else {
            Err(ConfigErrors(env_problems))
        };
        // Problem texts quote values (and the parser's type errors quote what they found);
        // none of them may carry a secret.
        checked.map_err(|ConfigErrors(list)| {
            let secrets = redact::secret_values(&doc);
            ConfigErrors(
                list.into_iter()
                    .map(|p| redact::scrub_problem(p, &secrets))
                    .collect(),
            )
        })
    }
}

/// Append a path segment to a URL prefix without doubling slashes.
pub fn join_url(base: &url::Url, segment: &str) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/{}", u.path().trim_end_matches('/'), segment);
    u.set_path(&path);
    u
}

/// Load every `*.toml` in a directory, sorted by name.
pub fn config_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod security_tests;
#[cfg(test)]
mod tests;
