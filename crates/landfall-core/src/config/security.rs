//! Kafka security (`[kafka.security]`) and object-store encryption (`store.sse*`): the raw keys
//! checked, secrets read from files, and the one mapping onto librdkafka properties.
//!
//! Secrets (`password`, `key_password`, `client_secret`) come from `${ENV}` or from a `*_file`
//! (how Kubernetes mounts a Secret). Either way they are held as [`Secret`], whose `Debug`
//! prints [`REDACTED`], and no problem text ever quotes one. File paths are not secrets: they
//! print, so a problem can say which file could not be read.

use std::fmt;
use std::path::{Path, PathBuf};

use super::problem::Problems;
use super::raw::{RawKafkaSecurity, RawStore};
use super::REDACTED;

/// A secret value: readable by the code that hands it to a client, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that passes it on (a librdkafka property).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's `security.protocol` value.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// TLS to the brokers (`protocol = "ssl" | "sasl_ssl"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA bundle (PEM) the broker certificates are checked against; `None` = the system store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS; both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub key_password: Option<Secret>,
    /// Check that the broker certificate names the host connected to (on unless turned off).
    pub verify_hostname: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

/// SASL authentication (`protocol = "sasl_plaintext" | "sasl_ssl"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslSettings {
    Plain {
        username: String,
        password: Secret,
    },
    Scram {
        hash: ScramHash,
        username: String,
        password: Secret,
    },
    /// OAUTHBEARER with tokens from an OIDC provider (client credentials grant), fetched and
    /// refreshed by librdkafka itself (`sasl.oauthbearer.method=oidc`).
    OauthBearer {
        token_endpoint_url: url::Url,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    },
}

/// A validated `[kafka.security]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

/// librdkafka properties that `[kafka.security]` sets; with the section present,
/// `kafka.options` may not set them too (two sources for one setting is a misconfiguration
/// waiting to happen, and `kafka.options` would silently win).
pub const SECURITY_MANAGED_OPTIONS: [&str; 25] = [
    "security.protocol",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.config",
    "enable.sasl.oauthbearer.unsecure.jwt",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.grant.type",
];

impl KafkaSecurity {
    /// The librdkafka properties for this section: the one place the mapping lives. Values of
    /// `sasl.password`, `ssl.key.password` and `sasl.oauthbearer.client.secret` are secrets;
    /// callers hand them to librdkafka and print none of them.
    pub fn librdkafka_properties(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("security.protocol", self.protocol.librdkafka_name().into())];
        if let Some(tls) = &self.tls {
            let path = |p: &PathBuf| p.display().to_string();
            if let Some(ca) = &tls.ca_file {
                out.push(("ssl.ca.location", path(ca)));
            }
            if let Some(cert) = &tls.cert_file {
                out.push(("ssl.certificate.location", path(cert)));
            }
            if let Some(key) = &tls.key_file {
                out.push(("ssl.key.location", path(key)));
            }
            if let Some(pw) = &tls.key_password {
                out.push(("ssl.key.password", pw.expose().into()));
            }
            // librdkafka's default is `https` since 2.0; said outright so an old default or a
            // passthrough cannot turn it off unnoticed.
            let algorithm = if tls.verify_hostname { "https" } else { "none" };
            out.push(("ssl.endpoint.identification.algorithm", algorithm.into()));
        }
        match &self.sasl {
            None => {}
            Some(SaslSettings::Plain { username, password }) => {
                out.push(("sasl.mechanism", "PLAIN".into()));
                out.push(("sasl.username", username.clone()));
                out.push(("sasl.password", password.expose().into()));
            }
            Some(SaslSettings::Scram {
                hash,
                username,
                password,
            }) => {
                let mechanism = match hash {
                    ScramHash::Sha256 => "SCRAM-SHA-256",
                    ScramHash::Sha512 => "SCRAM-SHA-512",
                };
                out.push(("sasl.mechanism", mechanism.into()));
                out.push(("sasl.username", username.clone()));
                out.push(("sasl.password", password.expose().into()));
            }
            Some(SaslSettings::OauthBearer {
                token_endpoint_url,
                client_id,
                client_secret,
                scope,
            }) => {
                out.push(("sasl.mechanism", "OAUTHBEARER".into()));
                out.push(("sasl.oauthbearer.method", "oidc".into()));
                out.push((
                    "sasl.oauthbearer.token.endpoint.url",
                    token_endpoint_url.to_string(),
                ));
                out.push(("sasl.oauthbearer.client.id", client_id.clone()));
                out.push((
                    "sasl.oauthbearer.client.secret",
                    client_secret.expose().into(),
                ));
                if let Some(scope) = scope {
                    out.push(("sasl.oauthbearer.scope", scope.clone()));
                }
            }
        }
        out
    }
}

/// Check `[kafka.security]`; `None` when absent or not buildable (problems are in `p`).
pub(super) fn validate_kafka_security(
    raw: &RawKafkaSecurity,
    p: &mut Problems<'_>,
) -> Option<KafkaSecurity> {
    let at = |key: &'static str| ["kafka", "security", key];
    let protocol = match raw.protocol.to_ascii_lowercase().as_str() {
        "plaintext" => SecurityProtocol::Plaintext,
        "ssl" => SecurityProtocol::Ssl,
        "sasl_plaintext" => SecurityProtocol::SaslPlaintext,
        "sasl_ssl" => SecurityProtocol::SaslSsl,
        other => {
            p.add(
                &at("protocol"),
                format!("unknown protocol `{other}`"),
                Some("plaintext | ssl | sasl_plaintext | sasl_ssl"),
            );
            return None;
        }
    };
    let mut ok = true;

    // Keys that belong to a part the protocol does not use are mistakes, not no-ops: a
    // `ca_file` under `sasl_plaintext` means the operator believes the link is encrypted.
    let tls_keys: [(&'static str, bool); 6] = [
        ("ca_file", raw.ca_file.is_some()),
        ("cert_file", raw.cert_file.is_some()),
        ("key_file", raw.key_file.is_some()),
        ("key_password", raw.key_password.is_some()),
        ("key_password_file", raw.key_password_file.is_some()),
        ("verify_hostname", raw.verify_hostname.is_some()),
    ];
    let sasl_keys: [(&'static str, bool); 9] = [
        ("mechanism", raw.mechanism.is_some()),
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("password_file", raw.password_file.is_some()),
        ("token_endpoint_url", raw.token_endpoint_url.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("client_secret_file", raw.client_secret_file.is_some()),
        ("scope", raw.scope.is_some()),
    ];
    for (keys, used, what, hint) in [
        (
            &tls_keys[..],
            protocol.uses_tls(),
            "TLS",
            "use protocol = \"ssl\" or \"sasl_ssl\", or remove the key",
        ),
        (
            &sasl_keys[..],
            protocol.uses_sasl(),
            "SASL",
            "use protocol = \"sasl_plaintext\" or \"sasl_ssl\", or remove the key",
        ),
    ] {
        for &(key, _) in keys.iter().filter(|(_, set)| *set && !used) {
            ok = false;
            p.add(
                &at(key),
                format!(
                    "is a {what} setting, but protocol `{}` does not use {what}",
                    protocol.librdkafka_name()
                ),
                Some(hint),
            );
        }
    }

    let tls = if protocol.uses_tls() {
        let ca_file = readable_file(p, &at("ca_file"), raw.ca_file.as_deref());
        let cert_file = readable_file(p, &at("cert_file"), raw.cert_file.as_deref());
        let key_file = readable_file(p, &at("key_file"), raw.key_file.as_deref());
        if raw.cert_file.is_some() != raw.key_file.is_some() {
            ok = false;
            let (missing, given) = if raw.cert_file.is_some() {
                ("key_file", "cert_file")
            } else {
                ("cert_file", "key_file")
            };
            p.add(
                &at(given),
                format!("is set without `{missing}`: a client certificate needs both"),
                Some("set both cert_file and key_file (PEM) for mutual TLS, or neither"),
            );
        }
        let key_password = secret(
            p,
            ["kafka", "security", "key_password"],
            raw.key_password.as_deref(),
            raw.key_password_file.as_deref(),
            false,
        );
        if key_password.is_some() && raw.key_file.is_none() {
            ok = false;
            p.add(
                &at(if raw.key_password.is_some() {
                    "key_password"
                } else {
                    "key_password_file"
                }),
                "is set without `key_file`",
                Some("the key password decrypts key_file"),
            );
        }
        Some(TlsSettings {
            ca_file,
            cert_file,
            key_file,
            key_password,
            verify_hostname: raw.verify_hostname.unwrap_or(true),
        })
    } else {
        None
    };

    let sasl = if protocol.uses_sasl() {
        let sasl = validate_sasl(raw, p);
        ok &= sasl.is_some();
        sasl
    } else {
        None
    };

    ok.then_some(KafkaSecurity {
        protocol,
        tls,
        sasl,
    })
}

fn validate_sasl(raw: &RawKafkaSecurity, p: &mut Problems<'_>) -> Option<SaslSettings> {
    let at = |key: &'static str| ["kafka", "security", key];
    let Some(mechanism) = raw.mechanism.as_deref() else {
        p.add(
            &at("mechanism"),
            "is required with a SASL protocol",
            Some("PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER"),
        );
        return None;
    };
    let oauth_keys: [(&'static str, bool); 5] = [
        ("token_endpoint_url", raw.token_endpoint_url.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("client_secret_file", raw.client_secret_file.is_some()),
        ("scope", raw.scope.is_some()),
    ];
    let password_keys: [(&'static str, bool); 3] = [
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("password_file", raw.password_file.is_some()),
    ];
    let mut stray = |keys: &[(&'static str, bool)], mechanism: &str| {
        let mut any = false;
        for (key, set) in keys {
            if *set {
                any = true;
                p.add(
                    &at(key),
                    format!("does not apply to mechanism `{mechanism}`"),
                    Some("see docs/security.md for the keys of each mechanism"),
                );
            }
        }
        any
    };
    let upper = mechanism.to_ascii_uppercase();
    match upper.as_str() {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            let stray_keys = stray(&oauth_keys, &upper);
            let username = required(p, &at("username"), raw.username.as_deref(), &upper);
            let password = secret(
                p,
                ["kafka", "security", "password"],
                raw.password.as_deref(),
                raw.password_file.as_deref(),
                true,
            );
            let (username, password) = (username?, password?);
            if stray_keys {
                return None;
            }
            Some(match upper.as_str() {
                "PLAIN" => SaslSettings::Plain { username, password },
                "SCRAM-SHA-256" => SaslSettings::Scram {
                    hash: ScramHash::Sha256,
                    username,
                    password,
                },
                _ => SaslSettings::Scram {
                    hash: ScramHash::Sha512,
                    username,
                    password,
                },
            })
        }
        "OAUTHBEARER" => {
            let stray_keys = stray(&password_keys, &upper);
            let url = required(
                p,
                &at("token_endpoint_url"),
                raw.token_endpoint_url.as_deref(),
                &upper,
            )
            .and_then(|u| match url::Url::parse(&u) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => Some(url),
                Ok(url) => {
                    p.add(
                        &at("token_endpoint_url"),
                        format!("scheme `{}` is not http or https", url.scheme()),
                        Some("the OIDC provider's token endpoint, https://..."),
                    );
                    None
                }
                Err(e) => {
                    p.add(
                        &at("token_endpoint_url"),
                        format!("is not a URL: {e}"),
                        Some("the OIDC provider's token endpoint, https://..."),
                    );
                    None
                }
            });
            let client_id = required(p, &at("client_id"), raw.client_id.as_deref(), &upper);
            let client_secret = secret(
                p,
                ["kafka", "security", "client_secret"],
                raw.client_secret.as_deref(),
                raw.client_secret_file.as_deref(),
                true,
            );
            let (token_endpoint_url, client_id, client_secret) = (url?, client_id?, client_secret?);
            if stray_keys {
                return None;
            }
            Some(SaslSettings::OauthBearer {
                token_endpoint_url,
                client_id,
                client_secret,
                scope: raw.scope.clone(),
            })
        }
        other => {
            p.add(
                &at("mechanism"),
                format!("unknown mechanism `{other}`"),
                Some("PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER"),
            );
            None
        }
    }
}

fn required(
    p: &mut Problems<'_>,
    path: &[&str],
    value: Option<&str>,
    mechanism: &str,
) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v.to_string()),
        Some(_) => {
            p.add(path, "is empty", None);
            None
        }
        None => {
            p.add(
                path,
                format!("is required with mechanism `{mechanism}`"),
                None,
            );
            None
        }
    }
}

/// A path that must name a readable file (checked now, so `landfall validate` catches a
/// missing Secret mount before the pod starts consuming).
fn readable_file(p: &mut Problems<'_>, path: &[&str], value: Option<&str>) -> Option<PathBuf> {
    let value = value?;
    match std::fs::File::open(value) {
        Ok(_) if Path::new(value).is_file() => Some(PathBuf::from(value)),
        Ok(_) => {
            p.add(path, format!("`{value}` is not a file"), None);
            None
        }
        Err(e) => {
            p.add(
                path,
                format!("cannot read `{value}`: {e}"),
                Some("is the Secret mounted at this path?"),
            );
            None
        }
    }
}

/// A secret given inline (`key`, usually `${ENV}`) or as a file (`key_file`), not both. The
/// file's one trailing newline is dropped (`echo secret > file`, and most Secret tooling, add
/// one). `needed`: whether it is required at all.
fn secret(
    p: &mut Problems<'_>,
    path: [&'static str; 3],
    inline: Option<&str>,
    file: Option<&str>,
    needed: bool,
) -> Option<Secret> {
    let key = path[2];
    let file_key = match key {
        "password" => "password_file",
        "key_password" => "key_password_file",
        _ => "client_secret_file",
    };
    let file_path = ["kafka", "security", file_key];
    match (inline, file) {
        (Some(_), Some(_)) => {
            p.add(
                &file_path,
                format!("is set together with `{key}`"),
                Some("give the secret one way: inline (from ${ENV}) or as a file"),
            );
            None
        }
        (Some(""), None) => {
            p.add(
                &path,
                "is empty",
                Some("is its ${ENV} variable set to a value?"),
            );
            None
        }
        (Some(v), None) => Some(Secret::new(v)),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(text) => {
                let value = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text);
                if value.is_empty() {
                    p.add(&file_path, format!("`{f}` is empty"), None);
                    None
                } else {
                    Some(Secret::new(value))
                }
            }
            Err(e) => {
                p.add(
                    &file_path,
                    format!("cannot read `{f}`: {e}"),
                    Some("is the Secret mounted at this path?"),
                );
                None
            }
        },
        (None, None) if needed => {
            p.add(
                &path,
                format!("is required: set `{key}` (e.g. \"${{ENV_VAR}}\") or `{file_key}`"),
                None,
            );
            None
        }
        (None, None) => None,
    }
}

/// Server-side encryption of every object a sink writes to S3 (`store.sse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEncryption {
    /// SSE-S3: keys managed by S3 (`AES256`).
    S3Managed,
    /// SSE-KMS (`aws:kms`) or dual-layer DSSE-KMS (`aws:kms:dsse`); `key_id` = `None` is the
    /// account's AWS-managed key; `bucket_key` asks S3 to use an S3 Bucket Key (fewer KMS calls).
    Kms {
        dual_layer: bool,
        key_id: Option<String>,
        bucket_key: Option<bool>,
    },
}

/// object_store S3 options that `store.sse*` sets; they may not also be in an options map.
pub const ENCRYPTION_MANAGED_OPTIONS: [&str; 8] = [
    "aws_server_side_encryption",
    "aws_sse_kms_key_id",
    "sse_kms_key_id",
    "aws_sse_bucket_key_enabled",
    "sse_bucket_key_enabled",
    "aws_sse_customer_key_base64",
    "sse_customer_key_base64",
    "server_side_encryption",
];

impl StoreEncryption {
    /// object_store S3 configuration keys for this setting: the one place the mapping lives.
    pub fn object_store_options(&self) -> Vec<(&'static str, String)> {
        match self {
            StoreEncryption::S3Managed => vec![("aws_server_side_encryption", "AES256".into())],
            StoreEncryption::Kms {
                dual_layer,
                key_id,
                bucket_key,
            } => {
                let kind = if *dual_layer {
                    "aws:kms:dsse"
                } else {
                    "aws:kms"
                };
                let mut out = vec![("aws_server_side_encryption", kind.to_string())];
                if let Some(id) = key_id {
                    out.push(("aws_sse_kms_key_id", id.clone()));
                }
                if let Some(b) = bucket_key {
                    out.push(("aws_sse_bucket_key_enabled", b.to_string()));
                }
                out
            }
        }
    }
}

/// Check `store.sse`, `store.sse_kms_key_id` and `store.sse_bucket_key` against the store URL
/// and the options maps of the store and the marker location.
pub(super) fn validate_store_encryption(
    raw: &RawStore,
    url: Option<&url::Url>,
    marker_options: &std::collections::BTreeMap<String, String>,
    p: &mut Problems<'_>,
) -> Option<StoreEncryption> {
    let at = |key: &'static str| ["store", key];
    let Some(sse) = raw.sse.as_deref() else {
        for (key, set) in [
            ("sse_kms_key_id", raw.sse_kms_key_id.is_some()),
            ("sse_bucket_key", raw.sse_bucket_key.is_some()),
        ] {
            if set {
                p.add(
                    &at(key),
                    "is set without `store.sse`",
                    Some("set store.sse = \"aws:kms\""),
                );
            }
        }
        return None;
    };
    if let Some(url) = url {
        match url.scheme() {
            "s3" => {}
            "gs" => p.add(
                &at("sse"),
                "applies to S3 only; object_store cannot set a per-object KMS key on GCS",
                Some("set a default Cloud KMS key on the bucket (CMEK); see docs/security.md"),
            ),
            other => p.add(
                &at("sse"),
                format!("applies to s3:// stores only, not `{other}://`"),
                None,
            ),
        }
    }
    for (section, options) in [("store", &raw.options), ("marker", marker_options)] {
        for key in options.keys() {
            if ENCRYPTION_MANAGED_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) {
                p.add(
                    &[section, "options", key.as_str()],
                    "conflicts with store.sse",
                    Some("set encryption with store.sse / store.sse_kms_key_id only"),
                );
            }
        }
    }
    let encryption = match sse {
        "AES256" | "aes256" => {
            for (key, set) in [
                ("sse_kms_key_id", raw.sse_kms_key_id.is_some()),
                ("sse_bucket_key", raw.sse_bucket_key.is_some()),
            ] {
                if set {
                    p.add(
                        &at(key),
                        "applies to SSE-KMS only, not `AES256`",
                        Some("use store.sse = \"aws:kms\""),
                    );
                }
            }
            StoreEncryption::S3Managed
        }
        "aws:kms" | "aws:kms:dsse" => {
            if raw.sse_kms_key_id.as_deref().is_some_and(str::is_empty) {
                p.add(
                    &at("sse_kms_key_id"),
                    "is empty",
                    Some("a KMS key ARN, key id or alias; or remove it for the AWS-managed key"),
                );
            }
            StoreEncryption::Kms {
                dual_layer: sse == "aws:kms:dsse",
                key_id: raw.sse_kms_key_id.clone(),
                bucket_key: raw.sse_bucket_key,
            }
        }
        other => {
            p.add(
                &at("sse"),
                format!("unknown server-side encryption `{other}`"),
                Some("AES256 | aws:kms | aws:kms:dsse"),
            );
            return None;
        }
    };
    Some(encryption)
}
