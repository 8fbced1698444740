//! Memory mode: a topic of `--partitions` (1,000) partitions, every one receiving data
//! (`--gb`, default 0.3 GB, of padded ~1 KiB records round-robin), drained by Landfall to local
//! disk with `max_buffered_bytes` = 256 MiB. Landfall's VmRSS is sampled every `--sample-ms`
//! (100) with its /metrics; the peak is its VmHWM at exit. Checks: exactly once, and peak RSS
//! <= `--rss-target-mib` (320). Run it at two `--gb` to show the peak does not grow with the
//! topic.

use landfall_bench::Shape;
use serde::Serialize;

use crate::landfall::{rss_at_fractions, Landed, Sample, SinkResult, Store};
use crate::mode_throughput::sink_ok;
use crate::produce::{produce, Pace, Phase};
use crate::{mean_record_bytes, note, Ctx, GB, MIB};

#[derive(Debug, Serialize)]
pub struct Point {
    /// Fraction of the records consumed.
    pub consumed_fraction: f64,
    pub t: f64,
    pub rss_mib: f64,
    pub buffered_mib: f64,
    pub paused: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub shape: String,
    pub partitions: i32,
    pub records: u64,
    pub input_bytes: u64,
    pub produce: Phase,
    pub max_buffered_bytes: u64,
    pub max_file_bytes: u64,
    pub peak_rss_mib: f64,
    /// Largest VmRSS sample (VmHWM can exceed it between samples) and when it was taken.
    pub max_sampled_rss_mib: f64,
    pub max_sampled_rss_at_s: f64,
    /// When every record had been consumed (after it, the shutdown flush).
    pub all_consumed_at_s: f64,
    pub max_buffered_mib: f64,
    pub max_partitions_paused: f64,
    pub rss_target_mib: f64,
    pub rss_ok: bool,
    pub series: Vec<Point>,
    pub cpu_s_per_gb: f64,
    pub landfall: SinkResult,
    pub landed: Landed,
    /// Every sample (t, consumed, landed, buffered, paused, RSS).
    pub samples: Vec<Sample>,
    pub ok: bool,
}

pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<(Report, bool)> {
    let args = ctx.args;
    let shape = args
        .shapes()
        .first()
        .copied()
        .unwrap_or(Shape::Padded(args.record_bytes));
    let name = shape.name();
    let partitions = args.partitions();
    let topic = format!("memory-{name}");
    ctx.create_topic(&topic, partitions);
    let mean = mean_record_bytes(shape);
    let records = ((args.gb() * GB) / mean).ceil() as u64;
    note(format!(
        "producing {records} records of ~{mean:.0} B over {partitions} partitions"
    ));
    let produced = produce(
        &ctx.produce_spec(&topic, shape, partitions, 20),
        Pace::Backlog { records },
    )?;
    let empty = produced.marks.values().filter(|(lo, hi)| lo == hi).count();
    if empty > 0 {
        note(format!("{empty} partitions received no record"));
    }
    note(format!(
        "produced in {:.1}s ({:.0} records/s)",
        produced.phase.seconds, produced.phase.records_per_s
    ));
    let mut running = ctx
        .sink_run(&name, "memory", &topic, shape, Store::Local)
        .start(ctx.ticks, ctx.broker_pid, None)?;
    running.wait_for("every record consumed", |s| {
        s.consumed >= records as f64 || s.landed >= records as f64
    })?;
    let (landfall, landed) = running.finish(&produced.marks, args.max_file_bytes)?;
    let series = rss_at_fractions(&landfall.samples, records, &[0.25, 0.5, 0.75, 1.0])
        .into_iter()
        .filter_map(|(f, s)| {
            s.map(|s| Point {
                consumed_fraction: f,
                t: s.t,
                rss_mib: s.rss_bytes as f64 / MIB,
                buffered_mib: s.buffered_bytes / MIB,
                paused: s.paused,
            })
        })
        .collect();
    let peak_rss_mib = landfall.peak_rss_bytes as f64 / MIB;
    let max_sample = landfall.samples.iter().max_by_key(|s| s.rss_bytes).copied();
    let rss_ok = peak_rss_mib <= args.rss_target_mib;
    let ok = rss_ok && sink_ok(&landfall, &landed);
    Ok((
        Report {
            shape: name,
            partitions,
            records,
            input_bytes: produced.bytes,
            produce: produced.phase,
            max_buffered_bytes: args.max_buffered_bytes(),
            max_file_bytes: args.max_file_bytes,
            peak_rss_mib,
            max_sampled_rss_mib: max_sample.map_or(0.0, |s| s.rss_bytes as f64 / MIB),
            max_sampled_rss_at_s: max_sample.map_or(0.0, |s| s.t),
            all_consumed_at_s: landfall.all_consumed_after_s,
            max_buffered_mib: landfall.max_buffered_bytes / MIB,
            max_partitions_paused: landfall.max_partitions_paused,
            rss_target_mib: args.rss_target_mib,
            rss_ok,
            series,
            cpu_s_per_gb: landfall.cpu_s_per_gb(produced.bytes),
            samples: landfall.samples.clone(),
            landfall,
            landed,
            ok,
        },
        ok,
    ))
}
