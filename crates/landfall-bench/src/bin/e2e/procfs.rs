//! What the harness reads from /proc: CPU time (utime + stime), memory (VmRSS, VmHWM), the load
//! average, and the pids of the helper processes it started (broker, S3 emulator).
//!
//! Every measured process (raw consumer, landfall, the Python baseline) is a child of the
//! harness. Its final CPU time is read from `/proc/<pid>/stat` after it exited but before it is
//! reaped: a zombie still reports its CPU times; a reaped process has no /proc entry.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}

/// (state, utime + stime in seconds) from /proc/<pid>/stat.
pub fn proc_cpu(pid: u32, ticks: f64) -> Option<(char, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((state, (utime + stime) / ticks))
}

/// CPU seconds of `pid`, or 0 if it cannot be read.
pub fn cpu_of(pid: Option<u32>, ticks: f64) -> f64 {
    pid.and_then(|p| proc_cpu(p, ticks)).map_or(0.0, |c| c.1)
}

/// A `Vm*` line of /proc/<pid>/status in bytes.
pub fn proc_vm_bytes(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The pid of this process's child whose command line contains `needle` (the tansu broker, the
/// moto server the testkit started).
pub fn child_with_cmdline(needle: &str) -> Option<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().into_owned();
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid = s[s.rfind(')')? + 2..].split_whitespace().nth(1)?;
        if ppid != me {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(needle)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// The last readings of a watched child process.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub cpu_seconds: f64,
    /// VmHWM: the kernel's high-water mark of resident memory.
    pub peak_rss_bytes: u64,
}

/// Samples a child's CPU and peak RSS and tells when it has exited (is a zombie).
#[derive(Debug)]
pub struct Watch {
    pub pid: u32,
    ticks: f64,
    pub usage: Usage,
}

impl Watch {
    pub fn new(pid: u32, ticks: f64) -> Self {
        Watch {
            pid,
            ticks,
            usage: Usage::default(),
        }
    }

    /// Take a reading; false once the process has exited (zombie) or is gone.
    pub fn sample(&mut self) -> bool {
        let Some((state, cpu)) = proc_cpu(self.pid, self.ticks) else {
            return false;
        };
        self.usage.cpu_seconds = cpu;
        if let Some(h) = proc_vm_bytes(self.pid, "VmHWM") {
            self.usage.peak_rss_bytes = self.usage.peak_rss_bytes.max(h);
        }
        !(state == 'Z' || state == 'X')
    }

    /// Sample every `every` until the process exits; the last reading is its final CPU time.
    /// Fails after `timeout` (the process is left running for the caller to kill).
    pub fn until_exit(&mut self, every: Duration, timeout: Duration) -> Result<Usage> {
        let deadline = Instant::now() + timeout;
        while self.sample() {
            if Instant::now() > deadline {
                bail!("pid {} still running after {timeout:?}", self.pid);
            }
            std::thread::sleep(every);
        }
        Ok(self.usage)
    }
}

/// What a measured child process left: its usage, its stdout, its exit code.
pub struct Finished {
    pub usage: Usage,
    pub stdout: String,
    pub exit_code: Option<i32>,
}

/// Run `cmd` to completion with stdout captured, sampling its CPU and peak RSS every 50 ms.
/// The last JSON object line of stdout is what the child reports.
pub fn run_measured(
    mut cmd: std::process::Command,
    ticks: f64,
    timeout: Duration,
) -> Result<Finished> {
    use std::io::Read as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("start {cmd:?}"))?;
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut watch = Watch::new(child.id(), ticks);
    let usage = match watch.until_exit(Duration::from_millis(50), timeout) {
        Ok(u) => u,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let status = child.wait().context("reap child")?;
    let stdout = reader.join().unwrap_or_default();
    Ok(Finished {
        usage,
        stdout,
        exit_code: status.code(),
    })
}

/// The last line of `stdout` that parses as a JSON object of type `T`.
pub fn last_json<T: serde::de::DeserializeOwned>(stdout: &str) -> Option<T> {
    stdout
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
}
