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
    /// Worth retrying with backoff: 5xx, 429, timeouts, connection resets.
    Transient,
    /// Retrying will not help: wrong or missing credentials, no such bucket, bad request.
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
        // object_store has already retried these (5xx, 429, timeouts, resets) within its own
        // budget, and does not expose the HTTP status: treat them as transient so the partition
        // backs off and tries again, bounded by the landing retry budget.
        E::Generic { .. } => ErrorClass::Transient,
        _ => ErrorClass::Transient,
    }
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
