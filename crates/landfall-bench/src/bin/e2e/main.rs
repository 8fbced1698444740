//! End-to-end harness: a tansu broker, topics filled with generated events, and the real
//! `landfall` binary against the same topics. Three modes (`--mode`):
//!
//! - `throughput` (default): per record shape, one topic produced once, then drained in turn by
//!   (a) a raw rdkafka consumer (the broker's ceiling in this run), (b) Landfall to local disk,
//!   (c) Landfall to the S3 emulator (moto), (d) the Python baseline (confluent-kafka + pyarrow,
//!   `scripts/bench-baseline.py`), each in its own consumer group; records/s, MB/s, CPU-s per GB,
//!   peak RSS, latency, files, and the ratios to the ceiling and to the baseline.
//! - `latency`: a producer at a fixed rate (50% of the measured ceiling) while Landfall runs with
//!   a small `max_age_ms`; produce -> marker latency p50/p99/max over every record.
//! - `memory`: 1,000 partitions all receiving data, a 256 MiB buffer budget; Landfall's RSS
//!   sampled every 100 ms, its peak, and exactly once.
//!
//! The broker's fetch path is latency-bound (see `/work/shared/DESIGN.md`), so absolute rates say
//! more about tansu than about Landfall: read the ratios, CPU-s per GB and peak RSS.
//! How every figure is computed: `docs/benchmarks.md`.
//!
//! Exit status: 0 when every check passed, 1 when a check failed, 2 when the run itself failed.

mod baseline;
mod checks;
mod landfall;
mod mode_latency;
mod mode_memory;
mod mode_throughput;
mod procfs;
mod produce;
mod raw;
mod report;
mod stats;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use landfall_bench::{Format, Shape};
use landfall_testkit::{Broker, Engine};

pub const SINK: &str = "bench";
pub const MB: f64 = 1e6;
pub const MIB: f64 = 1_048_576.0;
pub const GB: f64 = 1e9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Throughput,
    Latency,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShapeArg {
    /// ~150 B compact 12-field event.
    Small,
    /// ~500 B 12-field event.
    Medium,
    /// The padded event of exactly --record-bytes.
    Padded,
}

/// What a throughput run measures besides producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Raw,
    Local,
    S3,
    Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    Memory,
    Sqlite,
}

#[derive(Parser, Debug)]
#[command(
    name = "e2e",
    about = "End-to-end benchmarks of the landfall binary on a tansu broker: throughput against a raw consumer and a Python baseline, latency at 50% load, memory with 1,000 partitions"
)]
pub struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "throughput")]
    pub mode: Mode,
    /// Record shapes, comma-separated [default: small,medium,padded for throughput, medium for
    /// latency, padded for memory].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub shapes: Vec<ShapeArg>,
    /// Gigabytes (10^9 bytes) of record values per shape [default: 1 for throughput, 0.3 for
    /// memory].
    #[arg(long)]
    pub gb: Option<f64>,
    /// Partitions of each topic [default: 4; 1000 for memory].
    #[arg(long)]
    pub partitions: Option<i32>,
    /// `[flush].max_file_bytes` of the sink; also the target of the ±10% file-size check.
    #[arg(long, default_value_t = 67_108_864)]
    pub max_file_bytes: u64,
    /// Size of each `padded` record in bytes.
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// The landfall binary (default: the one beside this binary, else $CARGO_TARGET_DIR or
    /// target/ + release/landfall, built if missing).
    #[arg(long)]
    pub landfall_bin: Option<PathBuf>,
    /// Also print the whole report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Record format the sink decodes (declared: each shape's declared schema).
    #[arg(long, value_enum, default_value = "declared")]
    pub format: Format,
    /// Producer `compression.type` (none, lz4, zstd, ...).
    #[arg(long, default_value = "none")]
    pub producer_compression: String,
    /// Extra librdkafka producer setting KEY=VALUE (repeatable), applied after the defaults.
    #[arg(long = "producer-option", value_parser = parse_kv)]
    pub producer_options: Vec<(String, String)>,
    /// `fetch.wait.max.ms` for every consumer (Landfall's own default is 100).
    #[arg(long, default_value_t = 100)]
    pub fetch_wait_max_ms: u64,
    /// `[runtime].max_buffered_bytes` of the sink [default: 2 GiB; 256 MiB for memory].
    #[arg(long)]
    pub max_buffered_bytes: Option<u64>,
    /// `[flush].max_age_ms` of the sink [default: 600000; 1000 for latency].
    #[arg(long)]
    pub max_age_ms: Option<u64>,
    /// Throughput mode: parts to skip (comma-separated: raw, local, s3, baseline).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<Target>,
    /// Throughput mode: how the Python baseline parses values: `json` (json.loads per value +
    /// pyarrow.Table.from_pylist) or `arrow` (pyarrow.json.read_json per file).
    #[arg(long, default_value = "json", value_parser = ["json", "arrow"])]
    pub baseline_parser: String,
    /// Throughput mode: count missed targets (ratios, CPU) as failed checks (exit 1).
    #[arg(long)]
    pub strict_targets: bool,
    /// Latency mode: seconds to produce for.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Latency mode: records/s to produce at (default: --load x the measured ceiling).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Latency mode: fraction of the ceiling to produce at.
    #[arg(long, default_value_t = 0.5)]
    pub load: f64,
    /// Latency mode: GB of records the ceiling is measured with.
    #[arg(long, default_value_t = 0.1)]
    pub ceiling_gb: f64,
    /// How often Landfall's /metrics and /proc are sampled, in ms.
    #[arg(long, default_value_t = 100)]
    pub sample_ms: u64,
    /// Memory mode: peak RSS target in MiB (checked).
    #[arg(long, default_value_t = 320.0)]
    pub rss_target_mib: f64,
    /// Storage engine of the broker. `memory` is fast but loses records when a fetch starts
    /// inside a record batch (seeks, pause/resume); `sqlite` is correct but slow.
    #[arg(long, value_enum, default_value = "memory")]
    pub engine: EngineArg,
    /// Give up on a Landfall run when nothing was consumed or landed for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub stall_secs: u64,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
    /// Keep the working directory (configs, logs, data, markers) even when all passed.
    #[arg(long)]
    pub keep: bool,
    /// Print the first N records of each of --shapes and its declared schema, then exit.
    #[arg(long, value_name = "N")]
    pub show_records: Option<u64>,
    /// Internal: run the raw consumer with this JSON spec and print its report.
    #[arg(long, hide = true)]
    pub raw_child: Option<String>,
}

impl Args {
    pub fn shapes(&self) -> Vec<Shape> {
        let given = if self.shapes.is_empty() {
            match self.mode {
                Mode::Throughput => vec![ShapeArg::Small, ShapeArg::Medium, ShapeArg::Padded],
                Mode::Latency => vec![ShapeArg::Medium],
                Mode::Memory => vec![ShapeArg::Padded],
            }
        } else {
            self.shapes.clone()
        };
        given
            .into_iter()
            .map(|s| match s {
                ShapeArg::Small => Shape::Small,
                ShapeArg::Medium => Shape::Medium,
                ShapeArg::Padded => Shape::Padded(self.record_bytes),
            })
            .collect()
    }

    pub fn gb(&self) -> f64 {
        self.gb
            .unwrap_or(if self.mode == Mode::Memory { 0.3 } else { 1.0 })
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
            .unwrap_or(if self.mode == Mode::Memory { 1000 } else { 4 })
    }

    pub fn max_buffered_bytes(&self) -> u64 {
        self.max_buffered_bytes
            .unwrap_or(if self.mode == Mode::Memory {
                256 << 20
            } else {
                2 << 30
            })
    }

    pub fn max_age_ms(&self) -> u64 {
        self.max_age_ms.unwrap_or(if self.mode == Mode::Latency {
            1000
        } else {
            600_000
        })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(spec) = &args.raw_child {
        return raw::child_main(spec);
    }
    if let Some(n) = args.show_records {
        for shape in args.shapes() {
            println!(
                "# {} (mean {:.0} B)",
                shape.name(),
                mean_record_bytes(shape)
            );
            for seq in 0..n {
                println!("{}", shape.record(seq));
            }
            println!(
                "[format]\ntype = \"json\"\nfields = [\n{}]\n",
                shape.declared_fields()
            );
        }
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("e2e: run failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub fn note(msg: impl AsRef<str>) {
    eprintln!("[e2e] {}", msg.as_ref());
}

pub fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The landfall binary: `--landfall-bin`, else the one beside this binary (same target
/// directory and profile), else `$CARGO_TARGET_DIR` (or `target/`) + `release/landfall`, built
/// with cargo if missing.
fn landfall_bin(args: &Args) -> Result<PathBuf> {
    if let Some(b) = &args.landfall_bin {
        return Ok(b.clone());
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("landfall")))
        .filter(|b| b.exists())
    {
        return Ok(sibling);
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/landfall");
    if !bin.exists() {
        note(format!(
            "{} is missing: cargo build --release -p landfall",
            bin.display()
        ));
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "landfall"])
            .current_dir(&root)
            .status()
            .context("run cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p landfall failed ({status})");
        }
    }
    Ok(bin)
}

/// What every mode shares: the broker, the landfall binary, the working directory.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub ticks: f64,
    pub bin: PathBuf,
    pub broker: Broker,
    pub bootstrap: String,
    pub broker_pid: Option<u32>,
    pub workdir: PathBuf,
}

impl Ctx<'_> {
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        note(format!("creating {topic} with {partitions} partitions"));
        self.broker.create_topic(topic, partitions);
    }

    pub fn group(&self, what: &str) -> String {
        format!("bench-{what}-{}-{}", std::process::id(), unique())
    }

    /// A Landfall run of `shape` on `topic` into `store`, with every setting from the command
    /// line; its directory is `<workdir>/<name>/<what>` and its group is named after `what`.
    pub fn sink_run<'b>(
        &'b self,
        name: &str,
        what: &str,
        topic: &'b str,
        shape: Shape,
        store: landfall::Store,
    ) -> landfall::SinkRun<'b> {
        let args = self.args;
        landfall::SinkRun {
            bin: &self.bin,
            dir: self.workdir.join(name).join(what),
            bootstrap: &self.bootstrap,
            topic,
            group_id: self.group(what),
            shape,
            format: args.format,
            store,
            max_file_bytes: args.max_file_bytes,
            max_age_ms: args.max_age_ms(),
            max_buffered_bytes: args.max_buffered_bytes(),
            fetch_wait_max_ms: args.fetch_wait_max_ms,
            timeout: args.timeout(),
            stall: Duration::from_secs(args.stall_secs),
            sample_every: Duration::from_millis(args.sample_ms),
        }
    }

    pub fn produce_spec<'b>(
        &'b self,
        topic: &'b str,
        shape: Shape,
        partitions: i32,
        linger_ms: u64,
    ) -> produce::ProduceSpec<'b> {
        produce::ProduceSpec {
            bootstrap: &self.bootstrap,
            topic,
            shape,
            partitions,
            compression: &self.args.producer_compression,
            linger_ms,
            options: &self.args.producer_options,
        }
    }
}

/// Mean value size of a shape over its first 4096 records.
pub fn mean_record_bytes(shape: Shape) -> f64 {
    (0..4096u64).map(|s| shape.record(s).len()).sum::<usize>() as f64 / 4096.0
}

/// Environment of a report: machine, load, commit.
#[derive(Debug, serde::Serialize)]
pub struct Env {
    pub cpus: usize,
    pub loadavg_start: String,
    pub loadavg_end: String,
    pub landfall_bin: String,
    /// Modification time of the landfall binary (UTC): which build was measured.
    pub landfall_built: String,
    /// HEAD of the working tree the harness runs from (the binary may be older: see
    /// `landfall_built`).
    pub commit: String,
    pub engine: String,
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn run(args: &Args) -> Result<bool> {
    if args.partitions() < 1 || args.gb() <= 0.0 {
        bail!("need --partitions >= 1 and --gb > 0");
    }
    if args.shapes().contains(&Shape::Padded(args.record_bytes)) && args.record_bytes < 200 {
        bail!("need --record-bytes >= 200");
    }
    let loadavg_start = procfs::loadavg();
    let bin = landfall_bin(args)?;
    if !bin.exists() {
        bail!("landfall binary {} does not exist", bin.display());
    }
    let engine = match args.engine {
        EngineArg::Memory => Engine::Memory,
        EngineArg::Sqlite => Engine::Sqlite,
    };
    note(format!("starting tansu ({:?} engine)", args.engine));
    let broker = Broker::start(engine);
    let dir = tempfile::Builder::new().prefix("landfall-e2e-").tempdir()?;
    let ctx = Ctx {
        args,
        ticks: procfs::clock_ticks(),
        bin: bin.clone(),
        bootstrap: broker.bootstrap(),
        broker,
        broker_pid: procfs::child_with_cmdline("tansu"),
        workdir: dir.path().to_path_buf(),
    };
    let env = |loadavg_end: String| Env {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_start: loadavg_start.clone(),
        loadavg_end,
        landfall_bin: bin.display().to_string(),
        landfall_built: std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_default(),
        commit: git_commit(),
        engine: format!("{:?}", args.engine).to_lowercase(),
    };
    let outcome = match args.mode {
        Mode::Throughput => mode_throughput::run(&ctx).map(|(r, ok)| {
            let env = env(procfs::loadavg());
            report::print_throughput(&env, &r);
            (serde_json::json!({ "env": env, "throughput": r }), ok)
        }),
        Mode::Latency => mode_latency::run(&ctx).map(|(r, ok)| {
            let env = env(procfs::loadavg());
            report::print_latency(&env, &r);
            (serde_json::json!({ "env": env, "latency": r }), ok)
        }),
        Mode::Memory => mode_memory::run(&ctx).map(|(r, ok)| {
            let env = env(procfs::loadavg());
            report::print_memory(&env, &r);
            (serde_json::json!({ "env": env, "memory": r }), ok)
        }),
    };
    drop(ctx);
    let (value, ok) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let kept = dir.keep();
            note(format!("kept {} for inspection", kept.display()));
            return Err(e);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    if !ok || args.keep {
        let kept = dir.keep();
        std::fs::write(kept.join("report.json"), serde_json::to_vec_pretty(&value)?)?;
        println!("workdir          {}", kept.display());
    }
    std::io::stdout().flush()?;
    Ok(ok)
}
