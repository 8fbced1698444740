//! The operator's HTTP endpoint:
//! - `/metrics`: Prometheus text.
//! - `/healthz`: liveness. Every running sink loop went round within [`LIVENESS_TICKS`] ticks;
//!   a wedged loop is what a restart fixes.
//! - `/readyz`: readiness. Every sink started (store probe and Kafka preflight passed), every
//!   assigned partition recovered its position from the store, none stuck. A stuck partition
//!   (its landings failing for `runtime.stuck_after_ms`, or stopped because Kafka's log ends
//!   before its position) is reported here rather than by
//!   liveness: restarting the process does not fix a failing store, and a restart loop would
//!   hide the error that does.
//! - `/status`: JSON per sink and partition (`docs/operations.md#status`).
//!
//! Handlers only read the status board (a clone under a short lock); nothing here awaits while
//! holding it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use landfall_core::status::{liveness, readiness};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::sink::TICK;

/// Ticks a running sink loop may miss before `/healthz` fails: 30 s at the 100 ms tick. CPU work
/// (decoding, Parquet encoding of a chunk) runs inline in the loop and may hold it for seconds;
/// a loop silent for 30 s is wedged.
pub const LIVENESS_TICKS: u32 = 300;

/// Bind first, so a taken port is an error at start-up rather than a log line at shutdown.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (m1, m2, m3) = (metrics.clone(), metrics.clone(), metrics.clone());
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(move || async move { health(&m1) }))
        .route("/readyz", get(move || async move { ready(&m2) }))
        .route(
            "/status",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    status_json(&m3),
                )
                    .into_response()
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn stale_after() -> Duration {
    TICK * LIVENESS_TICKS
}

fn answer(r: Result<(), Vec<String>>, what: &str) -> (StatusCode, String) {
    match r {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what}:\n{}\n", why.join("\n")),
        ),
    }
}

/// Liveness: 503 naming each sink whose loop went silent.
pub fn health(metrics: &Metrics) -> (StatusCode, String) {
    let b = &metrics.board;
    let r = liveness(
        &b.heartbeats(),
        b.mono_ms(),
        stale_after().as_millis() as u64,
    );
    answer(r, "unhealthy")
}

/// Readiness: 503 with one line per reason.
pub fn ready(metrics: &Metrics) -> (StatusCode, String) {
    answer(readiness(&metrics.board.statuses()), "not ready")
}

/// The `/status` document: readiness, liveness and every sink's latest snapshot, its ages
/// computed now.
pub fn status_json(metrics: &Metrics) -> String {
    let b = &metrics.board;
    let now = crate::sink::wall_ms();
    let sinks: Vec<_> = b.statuses().into_iter().map(|s| s.aged(now)).collect();
    let ready = readiness(&sinks);
    let live = liveness(
        &b.heartbeats(),
        b.mono_ms(),
        stale_after().as_millis() as u64,
    );
    let doc = serde_json::json!({
        "ready": ready.is_ok(),
        "not_ready_because": ready.err().unwrap_or_default(),
        "live": live.is_ok(),
        "not_live_because": live.err().unwrap_or_default(),
        "sinks": sinks,
    });
    serde_json::to_string_pretty(&doc).expect("status serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use landfall_core::status::SinkPhase;

    use super::*;

    #[test]
    fn ready_once_started_and_unhealthy_when_the_loop_goes_silent() {
        let m = Metrics::new();
        let (code, body) = ready(&m);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let sink = m.board.sink("orders", "w1", 1 << 20, SinkPhase::Starting);
        assert_eq!(ready(&m).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health(&m).0, StatusCode::OK, "starting is alive");
        sink.set_phase(SinkPhase::Running);
        assert_eq!(ready(&m), (StatusCode::OK, "ok\n".to_string()));
        let doc: serde_json::Value = serde_json::from_str(&status_json(&m)).unwrap();
        assert_eq!(doc["ready"], true);
        assert_eq!(doc["sinks"][0]["sink"], "orders");
        assert_eq!(doc["sinks"][0]["writer_id"], "w1");
        assert_eq!(doc["sinks"][0]["buffer_budget_bytes"], 1 << 20);
        // The loop's heartbeat is far older than the limit: unhealthy.
        let (code, body) = {
            let beats = m.board.heartbeats();
            let now = beats[0].last_beat_ms + stale_after().as_millis() as u64 + 1;
            answer(
                liveness(&beats, now, stale_after().as_millis() as u64),
                "unhealthy",
            )
        };
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("sink `orders`: loop has not gone round"),
            "{body}"
        );
    }
}
