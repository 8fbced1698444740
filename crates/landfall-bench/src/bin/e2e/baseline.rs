//! The Python baseline (`scripts/bench-baseline.py`: confluent-kafka + pyarrow, zstd Parquet to
//! local disk), run as a child process with `$LANDFALL_PYTHON` and measured like Landfall: CPU
//! from /proc (utime + stime, read before reaping), peak RSS from VmHWM. Its files are checked
//! on disk: sizes as reported, rows from the Parquet footers, offsets contiguous from 0 to each
//! partition's end, and the group's committed offsets at the ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::procfs::{self, last_json, Usage};
use crate::produce::Marks;
use crate::stats::{Hist, Latency};
use crate::{note, workspace_root};

/// Arguments of one baseline run.
pub struct BaselineRun<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub group: String,
    pub marks: &'a Marks,
    pub out: PathBuf,
    pub flush_input_bytes: u64,
    pub fetch_wait_max_ms: u64,
    pub parser: &'a str,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileOut {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub size: u64,
    pub path: String,
    pub landed_ms: i64,
}

/// The JSON line the script prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct ScriptOut {
    pub records: u64,
    pub bytes: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub parser: String,
    pub started_ms: i64,
    pub last_landed_ms: i64,
    #[serde(skip_serializing)]
    pub file_list: Vec<FileOut>,
}

#[derive(Debug, Serialize)]
pub struct BaselineResult {
    /// Process spawned -> last file written and committed.
    pub seconds: f64,
    pub usage_cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub broker_cpu_seconds: f64,
    pub script: ScriptOut,
    /// Written - phase start (the spawn), per record.
    pub latency: Option<Latency>,
    /// Per file, its oldest record.
    pub file_latency: Option<Latency>,
    pub check: BaselineCheck,
}

#[derive(Debug, Serialize)]
pub struct BaselineCheck {
    pub ok: bool,
    pub rows_read_back: u64,
    pub problems: Vec<String>,
}

pub fn script() -> PathBuf {
    workspace_root().join("scripts/bench-baseline.py")
}

impl BaselineRun<'_> {
    pub fn run(&self, ticks: f64, broker: Option<u32>) -> Result<BaselineResult> {
        let python = landfall_testkit::python();
        std::fs::create_dir_all(&self.out)?;
        let ends: Vec<String> = self
            .marks
            .iter()
            .map(|(p, (_, hi))| format!("{p}:{hi}"))
            .collect();
        let log = self.out.join("baseline.log");
        let mut cmd = Command::new(&python);
        cmd.arg(script())
            .args(["--bootstrap", self.bootstrap, "--topic", self.topic])
            .args(["--group", &self.group, "--ends", &ends.join(",")])
            .arg("--out")
            .arg(&self.out)
            .args([
                "--flush-input-bytes",
                &self.flush_input_bytes.to_string(),
                "--fetch-wait-max-ms",
                &self.fetch_wait_max_ms.to_string(),
                "--parser",
                self.parser,
                "--timeout-secs",
                &self.timeout_secs.to_string(),
            ])
            .stderr(Stdio::from(std::fs::File::create(&log)?));
        note(format!(
            "python baseline: {} {} (log: {})",
            python.display(),
            script().display(),
            log.display()
        ));
        let broker0 = procfs::cpu_of(broker, ticks);
        let t0 = crate::produce::now_ms();
        let finished =
            procfs::run_measured(cmd, ticks, Duration::from_secs(self.timeout_secs + 60))?;
        let broker_cpu = procfs::cpu_of(broker, ticks) - broker0;
        let log_tail = || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        if finished.exit_code != Some(0) {
            bail!(
                "python baseline exited with {:?}\n{}",
                finished.exit_code,
                log_tail()
            );
        }
        let script: ScriptOut = last_json(&finished.stdout)
            .with_context(|| format!("python baseline printed no report\n{}", log_tail()))?;
        let Usage {
            cpu_seconds,
            peak_rss_bytes,
        } = finished.usage;
        let (mut records, mut files) = (Hist::default(), Hist::default());
        for f in &script.file_list {
            records.add(f.landed_ms - t0, f.rows);
            files.add(f.landed_ms - t0, 1);
        }
        let check = check(&script, self.marks, self.bootstrap, &self.group, self.topic);
        Ok(BaselineResult {
            seconds: (script.last_landed_ms - t0) as f64 / 1000.0,
            usage_cpu_seconds: cpu_seconds,
            peak_rss_bytes,
            broker_cpu_seconds: broker_cpu,
            latency: records.summary(),
            file_latency: files.summary(),
            script,
            check,
        })
    }
}

fn parquet_rows(path: &Path) -> Result<u64> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let r = SerializedFileReader::new(f).with_context(|| format!("read {}", path.display()))?;
    Ok(r.metadata().file_metadata().num_rows() as u64)
}

/// The baseline's own exactly-once: files contiguous per partition from 0 to the end, rows in
/// each footer = offsets covered, sizes on disk as reported, committed offsets at the ends.
fn check(
    out: &ScriptOut,
    marks: &Marks,
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> BaselineCheck {
    let mut problems = Vec::new();
    let mut by_p: BTreeMap<i32, Vec<&FileOut>> = BTreeMap::new();
    for f in &out.file_list {
        by_p.entry(f.partition).or_default().push(f);
    }
    let mut rows_read_back = 0;
    for (&p, &(lo, hi)) in marks {
        let mut fs = by_p.remove(&p).unwrap_or_default();
        fs.sort_by_key(|f| f.first);
        let mut next = lo;
        for f in fs {
            if f.first != next {
                problems.push(format!(
                    "partition {p}: file {} starts at {}, expected {next}",
                    f.path, f.first
                ));
            }
            let path = Path::new(&f.path);
            match std::fs::metadata(path) {
                Ok(md) if md.len() == f.size => {}
                Ok(md) => problems.push(format!(
                    "{}: {} B on disk, reported {}",
                    f.path,
                    md.len(),
                    f.size
                )),
                Err(e) => problems.push(format!("{}: {e}", f.path)),
            }
            match parquet_rows(path) {
                Ok(n) => {
                    rows_read_back += n;
                    if n != (f.last - f.first + 1) as u64 || n != f.rows {
                        problems.push(format!(
                            "{}: {n} rows for offsets {}..={} (reported {})",
                            f.path, f.first, f.last, f.rows
                        ));
                    }
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
            next = f.last + 1;
        }
        if next != hi {
            problems.push(format!(
                "partition {p}: files end at {next}, the partition at {hi}"
            ));
        }
    }
    if !by_p.is_empty() {
        problems.push(format!(
            "files for partitions the topic does not have: {:?}",
            by_p.keys()
        ));
    }
    let committed =
        landfall_testkit::committed_offsets(bootstrap, group, topic, marks.len() as i32);
    for (&p, &(_, hi)) in marks {
        if hi > 0 && committed.get(&p) != Some(&hi) {
            problems.push(format!(
                "partition {p}: committed offset {:?}, end {hi}",
                committed.get(&p)
            ));
        }
    }
    BaselineCheck {
        ok: problems.is_empty(),
        rows_read_back,
        problems,
    }
}
