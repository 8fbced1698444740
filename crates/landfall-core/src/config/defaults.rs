//! Defaults of every optional key, in one place so `docs/configuration.md` can be checked
//! against them.

pub fn yes() -> bool {
    true
}
pub fn start_from() -> String {
    "earliest".into()
}
pub fn session_timeout_ms() -> u64 {
    10_000
}
pub fn format_type() -> String {
    "json".into()
}
pub fn metadata_columns() -> Vec<String> {
    ["topic", "partition", "offset", "timestamp"]
        .map(String::from)
        .to_vec()
}
pub fn timezone() -> String {
    "UTC".into()
}
pub fn max_records() -> u64 {
    1_000_000
}
pub fn max_file_bytes() -> u64 {
    128 * 1024 * 1024
}
pub fn max_age_ms() -> u64 {
    60_000
}
pub fn compression() -> String {
    "zstd".into()
}
pub fn row_group_rows() -> usize {
    1_048_576
}
pub fn data_page_bytes() -> usize {
    1024 * 1024
}
pub fn statistics() -> String {
    "page".into()
}
pub fn multipart_threshold_bytes() -> u64 {
    16 * 1024 * 1024
}
pub fn multipart_part_bytes() -> u64 {
    8 * 1024 * 1024
}
pub fn max_retries() -> u32 {
    10
}
pub fn request_timeout_ms() -> u64 {
    30_000
}
pub fn on_decode_error() -> String {
    "dead_letter".into()
}
pub fn max_buffered_bytes() -> u64 {
    512 * 1024 * 1024
}
pub fn revoke_flush_timeout_ms() -> u64 {
    5_000
}
/// The whole shutdown, signal to exit ([`crate::shutdown::ShutdownPlan`]): 25 s fits
/// Kubernetes' default 30 s termination grace period with 5 s to spare.
pub fn shutdown_timeout_ms() -> u64 {
    25_000
}
pub fn upload_concurrency() -> usize {
    4
}
/// Five minutes of failing landings: long enough to ride out a store's bad minute, short enough
/// that an operator hears of a partition that will not land.
pub fn stuck_after_ms() -> u64 {
    300_000
}
/// Recovering an assignment (every assigned partition, without a hint a listing each) must end
/// well within librdkafka's `max.poll.interval.ms` (default 300 s): the rebalance callback blocks
/// polling while it waits.
pub fn recovery_timeout_ms() -> u64 {
    120_000
}
pub fn chunk_records() -> usize {
    8192
}

/// `[windows] allowed_lateness_ms`: 10 minutes past a window's end before it may close.
pub fn allowed_lateness_ms() -> u64 {
    600_000
}

pub fn late_records() -> String {
    "late_area".into()
}

/// `[windows] idle_after_ms`: a partition with nothing buffered or landing for a minute is idle.
pub fn idle_after_ms() -> u64 {
    60_000
}
