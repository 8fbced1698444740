//! Throughput mode: per shape, one topic produced once (a backlog, Kafka timestamps inside the
//! base hour), then drained in turn, each in its own consumer group, by the raw consumer,
//! Landfall to local disk, Landfall to the S3 emulator and the Python baseline.
//!
//! Latency here is "time to land since the phase started": every record is in the topic before
//! the phase starts, so a record's latency is its batch's landing time minus the phase start
//! (process spawn). It grows through the drain; p50 is roughly half the drain time. The latency
//! mode's produce -> marker figure is the one to read for latency.

use landfall_bench::Shape;
use landfall_testkit::S3Server;
use serde::Serialize;

use crate::baseline::{BaselineResult, BaselineRun};
use crate::landfall::{manifest_latency, Landed, SinkResult, SinkRun, Store};
use crate::procfs::child_with_cmdline;
use crate::produce::{produce, Pace, Phase};
use crate::raw::{RawOut, RawSpec};
use crate::stats::Latency;
use crate::{mean_record_bytes, note, Ctx, Target, GB, MB};

/// One measured contender of a shape's table.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub seconds: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub cpu_seconds: f64,
    pub cpu_s_per_gb: f64,
    pub peak_rss_mb: f64,
    /// Record-weighted time to land (see the module doc).
    pub latency: Option<Latency>,
    pub files: Option<u64>,
    pub mean_file_mb: Option<f64>,
    pub broker_cpu_seconds: f64,
    /// Every check on this contender passed (None: nothing to check).
    pub checks_ok: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Ratios {
    /// records/s over the raw consumer's.
    pub local_over_raw: Option<f64>,
    pub s3_over_raw: Option<f64>,
    pub baseline_over_raw: Option<f64>,
    /// CPU-s per GB over the Python baseline's.
    pub local_cpu_over_baseline: Option<f64>,
    pub s3_cpu_over_baseline: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Targets {
    /// Each target, whether it was met (None: not measured).
    pub items: Vec<(String, Option<bool>)>,
}

#[derive(Debug, Serialize)]
pub struct ShapeReport {
    pub shape: String,
    pub mean_record_bytes: f64,
    pub partitions: i32,
    pub records: u64,
    pub input_bytes: u64,
    pub produce: Phase,
    pub rows: Vec<Row>,
    pub ratios: Ratios,
    pub targets: Targets,
    pub raw: Option<RawOut>,
    pub local: Option<(SinkResult, Landed)>,
    pub s3: Option<(SinkResult, Landed)>,
    pub baseline: Option<BaselineResult>,
    /// Contenders whose run failed (the others still ran).
    pub errors: Vec<String>,
    /// Checks of every contender passed (targets not included unless --strict-targets).
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub max_file_bytes: u64,
    pub fetch_wait_max_ms: u64,
    pub baseline_parser: String,
    pub shapes: Vec<ShapeReport>,
}

pub fn run(ctx: &Ctx<'_>) -> anyhow::Result<(Report, bool)> {
    let args = ctx.args;
    let mut shapes = Vec::new();
    for shape in args.shapes() {
        shapes.push(run_shape(ctx, shape)?);
    }
    let ok = shapes.iter().all(|s| s.ok);
    Ok((
        Report {
            format: args.format.name(),
            max_file_bytes: args.max_file_bytes,
            fetch_wait_max_ms: args.fetch_wait_max_ms,
            baseline_parser: args.baseline_parser.clone(),
            shapes,
        },
        ok,
    ))
}

fn sink_row(name: &str, r: &SinkResult, l: &Landed, records: u64, input_bytes: u64) -> Row {
    let (latency, _) = manifest_latency(&r.manifests, |_, _| Some(r.started_wall_ms));
    Row {
        name: name.into(),
        seconds: r.seconds,
        records_per_s: records as f64 / r.seconds,
        mb_per_s: input_bytes as f64 / MB / r.seconds,
        cpu_seconds: r.cpu_seconds,
        cpu_s_per_gb: r.cpu_s_per_gb(input_bytes),
        peak_rss_mb: r.peak_rss_bytes as f64 / MB,
        latency,
        files: Some(l.files.count as u64),
        mean_file_mb: Some(l.files.mean_bytes / MB),
        broker_cpu_seconds: r.broker_cpu_seconds,
        checks_ok: Some(sink_ok(r, l)),
    }
}

/// The checks of a Landfall run: exactly once, the size check where byte-sealed files exist,
/// a clean exit.
pub fn sink_ok(r: &SinkResult, l: &Landed) -> bool {
    l.exactly_once.ok && l.size_check.ok && r.exit_code == Some(0)
}

fn run_shape(ctx: &Ctx<'_>, shape: Shape) -> anyhow::Result<ShapeReport> {
    let args = ctx.args;
    let skip = |t: Target| args.skip.contains(&t);
    let name = shape.name();
    let topic = format!("events-{name}");
    let partitions = args.partitions();
    let mean = mean_record_bytes(shape);
    let records = ((args.gb() * GB) / mean).ceil() as u64;
    ctx.create_topic(&topic, partitions);
    note(format!(
        "{name}: producing {records} records of ~{mean:.0} B ({:.2} GB)",
        records as f64 * mean / GB
    ));
    let produced = produce(
        &ctx.produce_spec(&topic, shape, partitions, 20),
        Pace::Backlog { records },
    )?;
    let marks = produced.marks.clone();
    let input_bytes = produced.bytes;
    note(format!(
        "{name}: produced in {:.1}s ({:.0} records/s, {:.1} MB/s)",
        produced.phase.seconds, produced.phase.records_per_s, produced.phase.mb_per_s
    ));
    let mut rows = Vec::new();

    // (a) raw consumer: the ceiling.
    // A contender that fails is reported and the others still run.
    let mut errors = Vec::new();
    let mut failed = |what: &str, e: anyhow::Error| {
        note(format!("{name}: {what} failed: {e:#}"));
        errors.push(format!("{what}: {e:#}"));
    };

    let raw = if skip(Target::Raw) {
        None
    } else {
        note(format!("{name}: raw consumer"));
        let broker0 = crate::procfs::cpu_of(ctx.broker_pid, ctx.ticks);
        match crate::raw::run(
            &RawSpec {
                bootstrap: ctx.bootstrap.clone(),
                topic: topic.clone(),
                group: ctx.group("raw"),
                marks: marks.clone(),
                fetch_wait_max_ms: args.fetch_wait_max_ms,
                t0_ms: crate::produce::now_ms(),
                timeout_secs: args.timeout_secs,
            },
            ctx.ticks,
        ) {
            Err(e) => {
                failed("raw", e);
                None
            }
            Ok((out, fin)) => {
                rows.push(Row {
                    name: "raw".into(),
                    seconds: out.seconds,
                    records_per_s: out.records as f64 / out.seconds,
                    mb_per_s: out.bytes as f64 / MB / out.seconds,
                    cpu_seconds: fin.usage.cpu_seconds,
                    cpu_s_per_gb: fin.usage.cpu_seconds / (out.bytes as f64 / GB),
                    peak_rss_mb: fin.usage.peak_rss_bytes as f64 / MB,
                    latency: out.latency,
                    files: None,
                    mean_file_mb: None,
                    broker_cpu_seconds: crate::procfs::cpu_of(ctx.broker_pid, ctx.ticks) - broker0,
                    checks_ok: None,
                });
                Some(out)
            }
        }
    };

    let sink = |store: Store, dir: &str| ctx.sink_run(&name, dir, &topic, shape, store);
    // Every record consumed (or landed): SIGTERM lands the tails.
    let drain = |run: SinkRun<'_>, helper: Option<u32>| -> anyhow::Result<(SinkResult, Landed)> {
        let mut running = run.start(ctx.ticks, ctx.broker_pid, helper)?;
        running.wait_for("every record consumed", |s| {
            s.consumed >= records as f64 || s.landed >= records as f64
        })?;
        running.finish(&marks, args.max_file_bytes)
    };

    // (b) Landfall to local disk.
    let local = if skip(Target::Local) {
        None
    } else {
        note(format!("{name}: landfall -> local disk"));
        match drain(sink(Store::Local, "local"), None) {
            Ok((r, l)) => {
                rows.push(sink_row("landfall-local", &r, &l, records, input_bytes));
                Some((r, l))
            }
            Err(e) => {
                failed("landfall-local", e);
                None
            }
        }
    };

    // (c) Landfall to the S3 emulator (a fresh moto per shape: it keeps objects in memory).
    let s3 = if skip(Target::S3) {
        None
    } else {
        note(format!("{name}: landfall -> S3 emulator (moto)"));
        let server = S3Server::start();
        let moto = child_with_cmdline("moto.server");
        let store = Store::S3 {
            prefix: format!("bench-{name}"),
            options: server.options(),
        };
        let result = drain(sink(store, "s3"), moto);
        drop(server);
        match result {
            Ok((r, l)) => {
                let mut row = sink_row("landfall-s3", &r, &l, records, input_bytes);
                row.name = format!(
                    "landfall-s3 (moto {:.1} CPU-s)",
                    r.store_cpu_seconds.unwrap_or(0.0)
                );
                rows.push(row);
                Some((r, l))
            }
            Err(e) => {
                failed("landfall-s3", e);
                None
            }
        }
    };

    // (d) Python baseline, files of about Landfall's size: flush after the input bytes that
    // compressed into `max_file_bytes` in Landfall's files.
    let baseline = if skip(Target::Baseline) {
        None
    } else {
        note(format!("{name}: python baseline"));
        let ratio = local
            .as_ref()
            .or(s3.as_ref())
            .map(|(_, l)| l.files.total_bytes as f64 / input_bytes as f64)
            .filter(|r| *r > 0.0)
            .unwrap_or(0.33);
        let run = BaselineRun {
            bootstrap: &ctx.bootstrap,
            topic: &topic,
            group: ctx.group("baseline"),
            marks: &marks,
            out: ctx.workdir.join(&name).join("baseline"),
            flush_input_bytes: (args.max_file_bytes as f64 / ratio) as u64,
            fetch_wait_max_ms: args.fetch_wait_max_ms,
            parser: &args.baseline_parser,
            timeout_secs: args.timeout_secs,
        }
        .run(ctx.ticks, ctx.broker_pid);
        run.map_err(|e| failed("python", e)).ok()
    };
    if let Some(b) = &baseline {
        let files = b.script.files.max(1);
        rows.push(Row {
            name: format!("python ({})", b.script.parser),
            seconds: b.seconds,
            records_per_s: records as f64 / b.seconds,
            mb_per_s: input_bytes as f64 / MB / b.seconds,
            cpu_seconds: b.usage_cpu_seconds,
            cpu_s_per_gb: b.usage_cpu_seconds / (input_bytes as f64 / GB),
            peak_rss_mb: b.peak_rss_bytes as f64 / MB,
            latency: b.latency,
            files: Some(b.script.files),
            mean_file_mb: Some(b.script.file_bytes as f64 / files as f64 / MB),
            broker_cpu_seconds: b.broker_cpu_seconds,
            checks_ok: Some(b.check.ok && b.script.records == records),
        });
    }

    let find = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix));
    let rate = |p: &str| find(p).map(|r| r.records_per_s);
    let cpu = |p: &str| find(p).map(|r| r.cpu_s_per_gb);
    let div = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let ratios = Ratios {
        local_over_raw: div(rate("landfall-local"), rate("raw")),
        s3_over_raw: div(rate("landfall-s3"), rate("raw")),
        baseline_over_raw: div(rate("python"), rate("raw")),
        local_cpu_over_baseline: div(cpu("landfall-local"), cpu("python")),
        s3_cpu_over_baseline: div(cpu("landfall-s3"), cpu("python")),
    };
    let at_least = |v: Option<f64>, t: f64| v.map(|v| v >= t);
    let at_most = |v: Option<f64>, t: f64| v.map(|v| v <= t);
    let mut items = vec![
        (
            "landfall-local >= 0.9 x raw".to_string(),
            at_least(ratios.local_over_raw, 0.9),
        ),
        (
            "landfall-s3 >= 0.9 x raw".to_string(),
            at_least(ratios.s3_over_raw, 0.9),
        ),
        (
            "landfall CPU-s/GB <= 1/10 of python's".to_string(),
            at_most(ratios.local_cpu_over_baseline, 0.1),
        ),
    ];
    if mean >= 450.0 {
        items.push((
            "landfall <= 6 CPU-s/GB".to_string(),
            at_most(cpu("landfall-local"), 6.0),
        ));
    }
    let targets = Targets { items };
    let checks_ok = errors.is_empty() && rows.iter().all(|r| r.checks_ok != Some(false));
    let targets_ok = targets.items.iter().all(|(_, ok)| *ok != Some(false));
    Ok(ShapeReport {
        shape: name,
        mean_record_bytes: input_bytes as f64 / records as f64,
        partitions,
        records,
        input_bytes,
        produce: produced.phase,
        rows,
        ratios,
        targets,
        raw,
        local,
        s3,
        baseline,
        errors,
        ok: checks_ok && (targets_ok || !args.strict_targets),
    })
}
