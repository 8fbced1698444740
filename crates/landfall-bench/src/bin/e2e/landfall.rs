//! Running the real `landfall` binary against the topic, to local disk or to the S3 emulator,
//! sampling its /metrics and /proc while it runs, and reading back what it landed.
//!
//! Timeline of one run: start the process (t0) -> [the mode's work: wait for consumption, or
//! wait for the group join then produce] -> SIGTERM -> the process exits (the shutdown flush
//! lands what is still buffered) -> its final CPU time is read from the zombie -> manifests are
//! loaded from the marker prefix. The run's seconds are t0 -> the latest manifest's `landed_at`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use landfall_bench::{sink_toml, Format, Shape, SinkSpec};
use landfall_core::manifest::Manifest;
use landfall_store::{scan, Location, OpenOptions};
use landfall_testkit::SinkProcess;
use serde::Serialize;

use crate::checks::{self, ExactlyOnce, Files, SizeCheck};
use crate::procfs::{cpu_of, proc_vm_bytes, Watch};
use crate::produce::{now_ms, Marks};
use crate::stats::{Hist, Latency};
use crate::{note, GB, MB, SINK};

/// Where the sink lands.
#[derive(Debug, Clone)]
pub enum Store {
    /// `file://{dir}/data` and `file://{dir}/markers`.
    Local,
    /// `s3://lake/{prefix}/raw` and `s3://lake/{prefix}/_landfall` on the emulator.
    S3 {
        prefix: String,
        options: BTreeMap<String, String>,
    },
}

/// One sink run's settings.
pub struct SinkRun<'a> {
    pub bin: &'a Path,
    /// Holds the config, `landfall.log` and, for [`Store::Local`], `data/` and `markers/`.
    pub dir: PathBuf,
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub group_id: String,
    pub shape: Shape,
    pub format: Format,
    pub store: Store,
    pub max_file_bytes: u64,
    pub max_age_ms: u64,
    pub max_buffered_bytes: u64,
    pub fetch_wait_max_ms: u64,
    pub timeout: Duration,
    /// Give up when nothing is consumed or landed for this long.
    pub stall: Duration,
    /// How often the sampler reads /metrics and /proc.
    pub sample_every: Duration,
}

/// One reading of the sampler.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Seconds since the process started.
    pub t: f64,
    pub consumed: f64,
    pub landed: f64,
    pub buffered_bytes: f64,
    pub paused: f64,
    pub assigned: f64,
    pub rss_bytes: u64,
}

struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The metrics the harness follows, in one scrape of /metrics (summed over label sets).
fn scrape(port: u16) -> Option<BTreeMap<&'static str, f64>> {
    use std::io::{Read, Write};
    const NAMES: [&str; 5] = [
        "landfall_records_consumed_total",
        "landfall_records_landed_total",
        "landfall_buffered_bytes",
        "landfall_partitions_paused",
        "landfall_partitions_assigned",
    ];
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let mut out = BTreeMap::new();
    for line in body.lines() {
        for name in NAMES {
            if let Some(rest) = line.strip_prefix(name) {
                if rest.starts_with('{') || rest.starts_with(' ') {
                    let v: f64 = line.rsplit(' ').next()?.parse().ok()?;
                    *out.entry(name).or_insert(0.0) += v;
                }
            }
        }
    }
    Some(out)
}

impl Sampler {
    fn start(pid: u32, port: u16, started: Instant, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = Instant::now() + every;
                    let rss = proc_vm_bytes(pid, "VmRSS");
                    if let Some(m) = scrape(port) {
                        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
                        samples.lock().expect("not poisoned").push(Sample {
                            t: started.elapsed().as_secs_f64(),
                            consumed: get("landfall_records_consumed_total"),
                            landed: get("landfall_records_landed_total"),
                            buffered_bytes: get("landfall_buffered_bytes"),
                            paused: get("landfall_partitions_paused"),
                            assigned: get("landfall_partitions_assigned"),
                            rss_bytes: rss.unwrap_or(0),
                        });
                    }
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
        };
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn last(&self) -> Sample {
        self.samples
            .lock()
            .expect("not poisoned")
            .last()
            .copied()
            .unwrap_or_default()
    }

    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().expect("not poisoned"))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A running sink.
pub struct Running {
    proc: SinkProcess,
    watch: Watch,
    sampler: Sampler,
    started_wall_ms: i64,
    deadline: Instant,
    stall: Duration,
    log: PathBuf,
    broker: Option<u32>,
    broker_cpu0: f64,
    helper: Option<u32>,
    helper_cpu0: f64,
    ticks: f64,
    pub data: Location,
    pub markers: Location,
    pub rt: tokio::runtime::Runtime,
    pub data_url: String,
}

/// Everything measured about one sink run.
#[derive(Debug, Serialize)]
pub struct SinkResult {
    /// Wall-clock ms the process was started.
    pub started_wall_ms: i64,
    /// Process start -> the latest manifest's `landed_at`.
    pub seconds: f64,
    pub first_consumed_after_s: f64,
    pub all_consumed_after_s: f64,
    /// Records / (all consumed - first consumed), from the 100 ms samples.
    pub steady_records_per_s: f64,
    /// utime + stime of the process, up to its exit.
    pub cpu_seconds: f64,
    /// VmHWM, last sample before exit.
    pub peak_rss_bytes: u64,
    pub max_buffered_bytes: f64,
    pub max_partitions_paused: f64,
    pub broker_cpu_seconds: f64,
    /// CPU of the S3 emulator (moto) during the run.
    pub store_cpu_seconds: Option<f64>,
    pub exit_code: Option<i32>,
    pub data_url: String,
    #[serde(skip)]
    pub samples: Vec<Sample>,
    #[serde(skip)]
    pub manifests: Vec<Manifest>,
}

fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Location> {
    let url = url::Url::parse(url).with_context(|| format!("parse {url}"))?;
    Ok(Location::open(
        &url,
        &OpenOptions {
            options: options.clone(),
            max_retries: 3,
            request_timeout: Duration::from_secs(30),
        },
    )?)
}

fn dir_url(p: &Path) -> Result<String> {
    let u =
        url::Url::from_directory_path(p).map_err(|_| anyhow!("{} is not absolute", p.display()))?;
    Ok(u.as_str().trim_end_matches('/').to_string())
}

impl SinkRun<'_> {
    /// Write the config and start the process.
    pub fn start(&self, ticks: f64, broker: Option<u32>, helper: Option<u32>) -> Result<Running> {
        std::fs::create_dir_all(&self.dir)?;
        let (data_url, markers_url, options) = match &self.store {
            Store::Local => {
                let (data, markers) = (self.dir.join("data"), self.dir.join("markers"));
                std::fs::create_dir_all(&data)?;
                std::fs::create_dir_all(&markers)?;
                (dir_url(&data)?, dir_url(&markers)?, BTreeMap::new())
            }
            Store::S3 { prefix, options } => (
                format!("s3://lake/{prefix}/raw"),
                format!("s3://lake/{prefix}/_landfall"),
                options.clone(),
            ),
        };
        let spec = SinkSpec {
            name: SINK.into(),
            topic: self.topic.into(),
            bootstrap: self.bootstrap.into(),
            group_id: self.group_id.clone(),
            format: self.format,
            shape: self.shape,
            data_url: data_url.clone(),
            markers_url: markers_url.clone(),
            max_file_bytes: self.max_file_bytes,
            max_records: 100_000_000,
            max_age_ms: self.max_age_ms,
            max_buffered_bytes: self.max_buffered_bytes,
            kafka_options: vec![(
                "fetch.wait.max.ms".into(),
                self.fetch_wait_max_ms.to_string(),
            )],
            store_options: options.clone().into_iter().collect(),
        };
        let config = landfall_testkit::write_config(&self.dir, SINK, &sink_toml(&spec));
        let log = self.dir.join("landfall.log");
        let data = open(&data_url, &options)?;
        let markers = open(&markers_url, &options)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        note(format!(
            "starting {} -> {data_url} (log: {})",
            self.bin.display(),
            log.display()
        ));
        let broker_cpu0 = cpu_of(broker, ticks);
        let helper_cpu0 = cpu_of(helper, ticks);
        let started_wall_ms = now_ms();
        let started = Instant::now();
        let proc = SinkProcess::start(
            self.bin,
            &config,
            &[
                ("LANDFALL_LOG", "info,rdkafka=warn"),
                // The malloc settings of the container image (Dockerfile): the figures are
                // those of the image users run.
                ("MALLOC_ARENA_MAX", "2"),
                ("MALLOC_TRIM_THRESHOLD_", "131072"),
            ],
            log.clone(),
        );
        let sampler = Sampler::start(proc.pid(), proc.metrics_port, started, self.sample_every);
        Ok(Running {
            watch: Watch::new(proc.pid(), ticks),
            proc,
            sampler,
            started_wall_ms,
            deadline: started + self.timeout,
            stall: self.stall,
            log,
            broker,
            broker_cpu0,
            helper,
            helper_cpu0,
            ticks,
            data,
            markers,
            rt,
            data_url,
        })
    }
}

impl Running {
    /// An error with the last lines of the sink's log.
    pub fn fail(&self, why: impl AsRef<str>) -> anyhow::Error {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        anyhow!(
            "{}\n--- last lines of {} ---\n{}",
            why.as_ref(),
            self.log.display(),
            tail.join("\n")
        )
    }

    /// Wait until the latest sample satisfies `done`; fail if the process exits or the run's
    /// deadline passes. Notes progress every 5 s.
    /// Also fails when neither `landfall_records_consumed_total` nor
    /// `landfall_records_landed_total` moved for the run's `stall` time.
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&Sample) -> bool) -> Result<Sample> {
        let mut last_note = Instant::now();
        let (mut progress, mut progress_at) = ((-1.0, -1.0), Instant::now());
        loop {
            if let Some(status) = self.proc.try_wait() {
                return Err(self.fail(format!("landfall exited early with {status}")));
            }
            if Instant::now() > self.deadline {
                return Err(self.fail(format!("landfall: timed out waiting for {what}")));
            }
            self.watch.sample();
            let s = self.sampler.last();
            if done(&s) {
                return Ok(s);
            }
            if (s.consumed, s.landed) != progress {
                (progress, progress_at) = ((s.consumed, s.landed), Instant::now());
            } else if progress_at.elapsed() > self.stall {
                return Err(self.fail(format!(
                    "landfall: stalled waiting for {what}: consumed {:.0} and landed {:.0} did not move for {:?}. \
                     If records are missing, the broker may have skipped them: tansu's memory engine \
                     returns only later batches to a fetch that starts inside a record batch (rerun, \
                     or --engine sqlite; a plain consumer from offset 0 tells who lost them)",
                    s.consumed, s.landed, self.stall
                )));
            }
            if last_note.elapsed() > Duration::from_secs(5) {
                note(format!(
                    "landfall: waiting for {what}: consumed {:.0}, landed {:.0}, buffered {:.0} MB, paused {:.0}, RSS {:.0} MB, CPU {:.1}s",
                    s.consumed,
                    s.landed,
                    s.buffered_bytes / MB,
                    s.paused,
                    s.rss_bytes as f64 / MB,
                    self.watch.usage.cpu_seconds
                ));
                last_note = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, wait for the exit (the shutdown flush lands what is buffered), read the final
    /// CPU time from the zombie, reap, load the manifests and check them.
    pub fn finish(mut self, marks: &Marks, max_file_bytes: u64) -> Result<(SinkResult, Landed)> {
        self.proc.signal("TERM");
        // Not try_wait: reaping would remove /proc/<pid> before the final CPU reading.
        if let Err(e) = self
            .watch
            .until_exit(Duration::from_millis(20), Duration::from_secs(120))
        {
            return Err(self.fail(format!("landfall did not exit within 120s of SIGTERM: {e}")));
        }
        let usage = self.watch.usage;
        let broker_cpu = cpu_of(self.broker, self.ticks) - self.broker_cpu0;
        let store_cpu = self
            .helper
            .map(|h| cpu_of(Some(h), self.ticks) - self.helper_cpu0);
        let Running {
            proc,
            sampler,
            started_wall_ms,
            rt,
            data,
            markers,
            log,
            data_url,
            ..
        } = self;
        let exit_code = proc.terminate(Duration::from_secs(10));
        let samples = sampler.finish();
        let manifests = rt
            .block_on(scan::load_commits(&markers, SINK))
            .context("load manifests")?
            .0;
        let next = landed_next(&manifests);
        if !marks
            .iter()
            .all(|(p, (lo, hi))| hi == lo || next.get(p) == Some(hi))
        {
            bail!(
                "landfall exited ({exit_code:?}) with partitions not landed: manifests reach {next:?}, ends {marks:?} (log: {})",
                log.display()
            );
        }
        let last_landed = manifests
            .iter()
            .filter_map(landed_ms)
            .max()
            .unwrap_or(started_wall_ms);
        let first_consumed = samples
            .iter()
            .find(|s| s.consumed > 0.0)
            .map_or(0.0, |s| s.t);
        let total: i64 = marks.values().map(|(lo, hi)| hi - lo).sum();
        let all_consumed = samples
            .iter()
            .find(|s| s.consumed >= total as f64)
            .map_or(0.0, |s| s.t);
        let result = SinkResult {
            started_wall_ms,
            seconds: (last_landed - started_wall_ms) as f64 / 1000.0,
            first_consumed_after_s: first_consumed,
            all_consumed_after_s: all_consumed,
            steady_records_per_s: total as f64 / (all_consumed - first_consumed).max(1e-3),
            cpu_seconds: usage.cpu_seconds,
            peak_rss_bytes: usage.peak_rss_bytes,
            max_buffered_bytes: samples.iter().map(|s| s.buffered_bytes).fold(0.0, f64::max),
            max_partitions_paused: samples.iter().map(|s| s.paused).fold(0.0, f64::max),
            broker_cpu_seconds: broker_cpu,
            store_cpu_seconds: store_cpu,
            exit_code,
            data_url,
            samples,
            manifests,
        };
        let landed = check(&rt, &data, &result, marks, max_file_bytes);
        Ok((result, landed))
    }
}

/// Per partition, the largest `offsets.next` the manifests reach.
pub fn landed_next(manifests: &[Manifest]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for m in manifests {
        let n = next.entry(m.partition).or_insert(i64::MIN);
        *n = (*n).max(m.offsets.next);
    }
    next
}

/// A manifest's `landed_at` (RFC 3339, ms, UTC; taken just before its commit record is
/// written) in epoch milliseconds.
pub fn landed_ms(m: &Manifest) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(&m.landed_at)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Record-weighted latency of every landed record, `landed_at` of its batch minus when the
/// record became available (`avail(partition, offset)` in epoch ms; None: unknown, skipped),
/// and per batch the latency of its oldest record.
pub fn manifest_latency(
    manifests: &[Manifest],
    avail: impl Fn(i32, i64) -> Option<i64>,
) -> (Option<Latency>, Option<Latency>) {
    let (mut records, mut batches) = (Hist::default(), Hist::default());
    for m in manifests {
        let Some(landed) = landed_ms(m) else { continue };
        let mut oldest = i64::MAX;
        for o in m.offsets.first..m.offsets.next {
            let Some(a) = avail(m.partition, o) else {
                continue;
            };
            oldest = oldest.min(a);
            records.add(landed - a, 1);
        }
        if oldest != i64::MAX {
            batches.add(landed - oldest, 1);
        }
    }
    (records.summary(), batches.summary())
}

/// What the checks found in one sink run.
#[derive(Debug, Serialize)]
pub struct Landed {
    pub files: Files,
    pub size_check: SizeCheck,
    pub exactly_once: ExactlyOnce,
}

impl SinkResult {
    pub fn cpu_s_per_gb(&self, input_bytes: u64) -> f64 {
        self.cpu_seconds / (input_bytes as f64 / GB)
    }
}

/// Run the checks on a finished run.
fn check(
    rt: &tokio::runtime::Runtime,
    data: &Location,
    r: &SinkResult,
    marks: &Marks,
    max_file_bytes: u64,
) -> Landed {
    let (files, size_check) = checks::files_and_sizes(&r.manifests, max_file_bytes);
    let exactly_once = checks::exactly_once(rt, &r.manifests, marks, data);
    Landed {
        files,
        size_check,
        exactly_once,
    }
}

/// The first sample at or after each fraction of `total` records consumed.
pub fn rss_at_fractions(
    samples: &[Sample],
    total: u64,
    fractions: &[f64],
) -> Vec<(f64, Option<Sample>)> {
    fractions
        .iter()
        .map(|&f| {
            let need = f * total as f64;
            (f, samples.iter().find(|s| s.consumed >= need).copied())
        })
        .collect()
}
