//! Store errors with the operation and URL they concern, classified once: retryable or not.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {url}: {}", one_line(source))]
    Object {
        op: &'static str,
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("opening {url}: {message}")]
    Open { url: String, message: String },
    #[error("{url}: {message}")]
    Corrupt { url: String, message: String },
    /// A create-only put was refused because another writer's put of the same key is in flight
    /// (S3 409 `ConditionalRequestConflict`, which object_store reports as `AlreadyExists`), so
    /// the object cannot be read yet. Two writers racing: retry, and one of them will win.
    #[error("create {url}: another writer is creating it at the same moment (conflict); retrying")]
    Conflict { url: String },
    /// A partition was never landed and where it starts could not be decided.
    #[error("{what} was never landed and its start cannot be decided: `start_from = \"latest\"` needs the partition's high watermark, which the broker did not give (no genesis record at {url})")]
    NoStart { url: String, what: String },
    /// The post-commit step could not produce a committed batch's notification (`[notify]`).
    /// It travels the landing's error path on purpose: the step is retried (the same attempt
    /// id finds its own commit record) until the broker acknowledges, so no committed batch's
    /// notification is skipped.
    #[error("notify {topic}: {message}")]
    Notify { topic: String, message: String },
}

/// Store errors can carry a multi-line XML body; an operator's log line should stay one line.
fn one_line(e: &object_store::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a failed store operation should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying with backoff: 5xx, 408, 429, timeouts, connection resets, no answer.
    Transient,
    /// Retrying will not help: wrong or missing credentials, no such bucket, a 4xx answer other
    /// than 408 and 429 (bad request, method not allowed, length required, too large, ...).
    Permanent,
}

impl StoreError {
    pub fn object(op: &'static str, url: impl Into<String>, source: object_store::Error) -> Self {
        StoreError::Object {
            op,
            url: url.into(),
            source,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Object { source, .. } => classify(source),
            StoreError::Open { .. } | StoreError::Corrupt { .. } => ErrorClass::Permanent,
            StoreError::Conflict { .. } => ErrorClass::Transient,
            StoreError::NoStart { .. } => ErrorClass::Permanent,
            StoreError::Notify { .. } => ErrorClass::Transient,
        }
    }

    /// The HTTP status the store answered, if the failure was an answer (not a dropped
    /// connection, a timeout, or a local filesystem error).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            StoreError::Object { source, .. } => http_status(source),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// One line for an operator: what failed and the likely cause.
    pub fn cause(&self) -> &'static str {
        match self {
            StoreError::Object { source, .. } => match source {
                object_store::Error::PermissionDenied { .. } => {
                    "permission denied: wrong credentials or missing IAM permission"
                }
                object_store::Error::Unauthenticated { .. } => {
                    "not authenticated: missing or invalid credentials"
                }
                object_store::Error::NotFound { .. } => "not found: does the bucket exist?",
                _ if classify(source) == ErrorClass::Transient => "transient store error (retried)",
                _ if http_status(source).is_some() => {
                    "the store refused the request (HTTP status above); retrying cannot help"
                }
                _ => "store rejected the request",
            },
            StoreError::Open { .. } => "invalid store configuration",
            StoreError::Corrupt { .. } => "unexpected object content",
            StoreError::Conflict { .. } => "concurrent create-only writes (retried)",
            StoreError::NoStart { .. } => "is the broker answering ListOffsets?",
            StoreError::Notify { .. } => {
                "the notification topic's broker did not acknowledge (retried)"
            }
        }
    }
}

fn classify(e: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match e {
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => ErrorClass::Permanent,
        // object_store reports every other HTTP answer as `Generic`, the status hidden in the
        // source chain. It has already retried 5xx, 408 and 429 within its own budget and
        // returned any other status at once: those answers are deterministic (a malformed or
        // oversized request, a method or header the store refuses, a redirect to another
        // region), and retrying the landing would repeat them forever.
        E::Generic { .. } => match http_status(e) {
            Some(status) => classify_status(status),
            // No answer: a dropped connection, a timeout, an unknown outcome. Worth retrying.
            None => ErrorClass::Transient,
        },
        _ => ErrorClass::Transient,
    }
}

/// The class of an HTTP status the store answered with.
pub fn classify_status(status: u16) -> ErrorClass {
    match status {
        408 | 429 => ErrorClass::Transient,
        300..=499 => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// What object_store 0.14 prints for a non-2xx answer (`RequestError::Status`). Its
/// `RetryError`, which has a `status()` method, lives in a private module and cannot be
/// downcast to, so the status is read from that error's text: the one element of the source
/// chain whose message starts with this. `tests/http_status.rs` fails if a new object_store
/// changes the text.
const STATUS_PREFIX: &str = "Server returned non-2xx status code: ";

fn http_status(e: &object_store::Error) -> Option<u16> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(rest) = err.to_string().strip_prefix(STATUS_PREFIX) {
            return rest.get(..3)?.parse().ok();
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let perm = StoreError::object(
            "put",
            "s3://b/k",
            object_store::Error::PermissionDenied {
                path: "k".into(),
                source: "403".into(),
            },
        );
        assert_eq!(perm.class(), ErrorClass::Permanent);
        assert!(perm.cause().contains("credentials"));
        let io = StoreError::object(
            "put",
            "s3://b/k",
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                )),
            },
        );
        assert!(io.is_retryable());
    }
}
