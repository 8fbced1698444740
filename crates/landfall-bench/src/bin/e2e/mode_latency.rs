//! Latency mode: Landfall runs (local disk, small `max_age_ms`) and has joined its group; then a
//! producer sends at a fixed rate (default: `--load` = 50% of the ceiling a raw consumer
//! measured on a backlog of the same shape) for `--seconds`, each record's Kafka timestamp =
//! the wall-clock time it was handed to the producer. Once every record has landed, SIGTERM.
//!
//! A record's latency = `landed_at` of the manifest that lists it (taken just before its commit
//! record is written) - its Kafka timestamp. Reported over every record (p50/p99/max), and per
//! batch for its oldest record. Check: record p99 <= max_age_ms + 1000.

use landfall_bench::Shape;
use serde::Serialize;

use crate::landfall::{manifest_latency, Landed, SinkResult, SinkRun, Store};
use crate::mode_throughput::sink_ok;
use crate::produce::{now_ms, produce, Pace, Phase};
use crate::raw::{RawOut, RawSpec};
use crate::stats::Latency;
use crate::{mean_record_bytes, note, Ctx, GB};

#[derive(Debug, Serialize)]
pub struct Ceiling {
    pub records: u64,
    pub raw: RawOut,
}

#[derive(Debug, Serialize)]
pub struct ShapeReport {
    pub shape: String,
    pub mean_record_bytes: f64,
    pub partitions: i32,
    /// The raw consumer's steady records/s on a backlog (None when --rate was given).
    pub ceiling: Option<Ceiling>,
    pub target_rate: f64,
    pub produce: Phase,
    pub max_age_ms: u64,
    /// Over every record: landed_at - Kafka timestamp.
    pub latency: Option<Latency>,
    /// Per batch, its oldest record.
    pub batch_latency: Option<Latency>,
    pub p99_limit_ms: u64,
    pub p99_ok: bool,
    pub cpu_s_per_gb: f64,
    pub landfall: SinkResult,
    pub landed: Landed,
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub shapes: Vec<ShapeReport>,
}

pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<(Report, bool)> {
    let mut shapes = Vec::new();
    for shape in ctx.args.shapes() {
        shapes.push(run_shape(ctx, shape)?);
    }
    let ok = shapes.iter().all(|s| s.ok);
    Ok((
        Report {
            format: ctx.args.format.name(),
            shapes,
        },
        ok,
    ))
}

fn run_shape(ctx: &Ctx<'_>, shape: Shape) -> anyhow::Result<ShapeReport> {
    let args = ctx.args;
    let name = shape.name();
    let partitions = args.partitions();
    let mean = mean_record_bytes(shape);

    let (ceiling, rate) = match args.rate {
        Some(rate) => (None, rate),
        None => {
            let topic = format!("ceiling-{name}");
            ctx.create_topic(&topic, partitions);
            let records = ((args.ceiling_gb * GB) / mean).ceil() as u64;
            note(format!(
                "{name}: measuring the ceiling on {records} records"
            ));
            let p = produce(
                &ctx.produce_spec(&topic, shape, partitions, 20),
                Pace::Backlog { records },
            )?;
            let (raw, _) = crate::raw::run(
                &RawSpec {
                    bootstrap: ctx.bootstrap.clone(),
                    topic,
                    group: ctx.group("ceiling"),
                    marks: p.marks,
                    fetch_wait_max_ms: args.fetch_wait_max_ms,
                    t0_ms: now_ms(),
                    timeout_secs: args.timeout_secs,
                },
                ctx.ticks,
            )?;
            let rate = args.load * raw.steady_records_per_s;
            note(format!(
                "{name}: ceiling {:.0} records/s (steady); producing at {rate:.0} records/s",
                raw.steady_records_per_s
            ));
            (Some(Ceiling { records, raw }), rate)
        }
    };

    let topic = format!("latency-{name}");
    ctx.create_topic(&topic, partitions);
    let max_age_ms = args.max_age_ms();
    let mut running = SinkRun {
        // Every record must land after the producer's `--seconds` as well.
        timeout: args.timeout() + std::time::Duration::from_secs_f64(args.seconds),
        ..ctx.sink_run(&name, "latency", &topic, shape, Store::Local)
    }
    .start(ctx.ticks, ctx.broker_pid, None)?;
    running.wait_for("every partition assigned", |s| {
        s.assigned >= partitions as f64
    })?;
    note(format!(
        "{name}: landfall joined; producing {rate:.0} records/s for {}s",
        args.seconds
    ));
    let produced = produce(
        &ctx.produce_spec(&topic, shape, partitions, 5),
        Pace::Rate {
            rate,
            seconds: args.seconds,
        },
    )?;
    let total = produced.records as f64;
    running.wait_for("every record landed", |s| s.landed >= total)?;
    let (landfall, landed) = running.finish(&produced.marks, args.max_file_bytes)?;
    let ts = produced.timestamps.unwrap_or_default();
    let (latency, batch_latency) = manifest_latency(&landfall.manifests, |p, o| {
        ts.get(&p)
            .and_then(|v| v.get(o as usize))
            .copied()
            .filter(|&t| t != i64::MIN)
    });
    let p99_limit_ms = max_age_ms + 1000;
    let p99_ok = latency.is_some_and(|l| l.p99_ms <= p99_limit_ms);
    let ok = p99_ok && landed.exactly_once.ok && sink_ok(&landfall, &landed);
    Ok(ShapeReport {
        shape: name,
        mean_record_bytes: produced.bytes as f64 / produced.records.max(1) as f64,
        partitions,
        ceiling,
        target_rate: rate,
        cpu_s_per_gb: landfall.cpu_s_per_gb(produced.bytes),
        produce: produced.phase,
        max_age_ms,
        latency,
        batch_latency,
        p99_limit_ms,
        p99_ok,
        landfall,
        landed,
        ok,
    })
}
