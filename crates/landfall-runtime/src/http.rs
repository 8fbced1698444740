//! The operator's HTTP endpoint: `/metrics` for Prometheus, `/healthz` for liveness (unhealthy
//! while a partition is stuck: its landings have failed for `runtime.stuck_after_ms`, or it is
//! stopped because Kafka's log ends before its position).

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Bind first, so a taken port is an error at start-up rather than a log line at shutdown.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let m = metrics.clone();
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(move || async move { health(&m) }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Liveness: not ok while any partition is stuck, so an orchestrator restarts the process (or an
/// alert fires) instead of a partition staying paused behind a failing store unnoticed.
pub fn health(metrics: &Metrics) -> (StatusCode, String) {
    match metrics.stuck_partitions() {
        0 => (StatusCode::OK, "ok\n".into()),
        n => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "unhealthy: {n} partition(s) stuck: landings failing for runtime.stuck_after_ms, or out of range above the log end (see the error log)\n"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_while_a_partition_is_stuck() {
        let m = Metrics::new();
        assert_eq!(health(&m).0, StatusCode::OK);
        m.partitions_stuck.with_label_values(&["a"]).set(0);
        m.partitions_stuck.with_label_values(&["b"]).set(2);
        let (code, body) = health(&m);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("2 partition(s) stuck"), "{body}");
    }
}
