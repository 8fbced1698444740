//! Printing the reports: one compact table per shape, then a summary across shapes.

use crate::landfall::{Landed, SinkResult};
use crate::stats::Latency;
use crate::{mode_latency, mode_memory, mode_throughput, Env, MB, MIB};

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{:.2}", ms as f64 / 1000.0))
}

fn lat(l: &Option<Latency>) -> String {
    l.map_or_else(
        || "-".into(),
        |l| {
            format!(
                "p50 {} s, p99 {} s, max {} s over {}",
                secs(Some(l.p50_ms)),
                secs(Some(l.p99_ms)),
                secs(Some(l.max_ms)),
                l.count
            )
        },
    )
}

fn print_env(env: &Env, what: &str) {
    println!(
        "== landfall e2e {what}: {} cpus, tansu {} engine, landfall {} (built {}; tree at commit {}) ==",
        env.cpus, env.engine, env.landfall_bin, env.landfall_built, env.commit
    );
    println!(
        "load average     {} at start, {} at end",
        env.loadavg_start, env.loadavg_end
    );
}

/// The per-run lines of a Landfall run: flush reasons, checks, memory.
fn print_sink(name: &str, r: &SinkResult, l: &Landed) {
    println!(
        "{name}: first consumed {:.1} s, all consumed {:.1} s, all landed {:.1} s (steady {:.0} records/s); max buffered {:.0} MB, max paused partitions {}, exit code {:?}",
        r.first_consumed_after_s,
        r.all_consumed_after_s,
        r.seconds,
        r.steady_records_per_s,
        r.max_buffered_bytes / MB,
        r.max_partitions_paused,
        r.exit_code
    );
    for (reason, s) in &l.files.by_reason {
        println!(
            "  reason {reason:<9} {} batches, {} files, min {} B, max {} B, mean {:.0} B",
            s.batches, s.files, s.min_bytes, s.max_bytes, s.mean_bytes
        );
    }
    let s = &l.size_check;
    if s.not_exercised {
        println!("  size check     n/a: no file was sealed for \"bytes\" (raise --gb or lower --max-file-bytes)");
    } else {
        println!(
            "  size check     {}: {} files sealed for \"bytes\", target {} B ±{}%, deviation min {:+.2}% max {:+.2}% mean {:+.2}%",
            pass(s.ok),
            s.checked_files,
            s.target_bytes,
            s.tolerance_pct,
            s.min_deviation_pct,
            s.max_deviation_pct,
            s.mean_deviation_pct
        );
    }
    for o in &s.outside {
        println!("    outside: {o}");
    }
    let e = &l.exactly_once;
    println!(
        "  exactly once   {}: {} manifests, {} records, {} dead-lettered",
        pass(e.ok),
        e.manifests,
        e.records,
        e.dead_lettered
    );
    for p in e.problems.iter().take(20) {
        println!("    problem: {p}");
    }
    if e.problems.len() > 20 {
        println!(
            "    ... {} more problems (see --json)",
            e.problems.len() - 20
        );
    }
}

pub fn print_throughput(env: &Env, r: &mode_throughput::Report) {
    print_env(env, "throughput");
    for s in &r.shapes {
        println!();
        println!(
            "== {}: {} records x ~{:.0} B = {:.1} MB, {} partitions, {}, max_file_bytes {} ==",
            s.shape,
            s.records,
            s.mean_record_bytes,
            s.input_bytes as f64 / MB,
            s.partitions,
            r.format,
            r.max_file_bytes
        );
        println!(
            "produce          {:>8.1} s  {:>9.0} records/s  {:>7.1} MB/s",
            s.produce.seconds, s.produce.records_per_s, s.produce.mb_per_s
        );
        println!(
            "{:<32} {:>7} {:>10} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>8} {:>7} {:>6}",
            "",
            "seconds",
            "records/s",
            "MB/s",
            "CPU-s",
            "CPU-s/GB",
            "RSS MB",
            "p50 s",
            "p99 s",
            "files",
            "file MB",
            "broker",
            "checks"
        );
        for row in &s.rows {
            println!(
                "{:<32} {:>7.1} {:>10.0} {:>7.1} {:>7.1} {:>8.2} {:>8.0} {:>6} {:>6} {:>6} {:>8} {:>7.1} {:>6}",
                row.name,
                row.seconds,
                row.records_per_s,
                row.mb_per_s,
                row.cpu_seconds,
                row.cpu_s_per_gb,
                row.peak_rss_mb,
                secs(row.latency.map(|l| l.p50_ms)),
                secs(row.latency.map(|l| l.p99_ms)),
                row.files.map_or_else(|| "-".into(), |f| f.to_string()),
                opt(row.mean_file_mb, 1),
                row.broker_cpu_seconds,
                row.checks_ok.map_or("-", pass)
            );
        }
        if let Some((r, l)) = &s.local {
            print_sink("landfall-local", r, l);
        }
        if let Some((r, l)) = &s.s3 {
            print_sink("landfall-s3", r, l);
        }
        if let Some(b) = &s.baseline {
            println!(
                "python ({}): {} files, {:.1} MB ({:.3} of input), {} rows read back from the Parquet footers; files check {}",
                b.script.parser,
                b.script.files,
                b.script.file_bytes as f64 / MB,
                b.script.file_bytes as f64 / s.input_bytes as f64,
                b.check.rows_read_back,
                pass(b.check.ok)
            );
            for p in b.check.problems.iter().take(20) {
                println!("    problem: {p}");
            }
        }
        for e in &s.errors {
            println!("RUN FAILED       {e}");
        }
        let q = &s.ratios;
        println!(
            "ratios           records/s: landfall-local/raw {}, landfall-s3/raw {}, python/raw {}; CPU-s/GB: landfall-local/python {}, landfall-s3/python {}",
            opt(q.local_over_raw, 3),
            opt(q.s3_over_raw, 3),
            opt(q.baseline_over_raw, 3),
            opt(q.local_cpu_over_baseline, 3),
            opt(q.s3_cpu_over_baseline, 3)
        );
        let t: Vec<String> = s
            .targets
            .items
            .iter()
            .map(|(what, ok)| {
                format!(
                    "{what}: {}",
                    ok.map_or("not measured", |ok| if ok { "met" } else { "MISSED" })
                )
            })
            .collect();
        println!("targets          {}", t.join("; "));
    }
    if !r.shapes.is_empty() {
        println!();
        println!("== summary (records/s ratios to the raw consumer, CPU-s per GB of input) ==");
        println!(
            "{:<12} {:>6} {:>10} {:>9} {:>7} {:>10} {:>9} {:>7} {:>7} {:>12} {:>7}",
            "shape",
            "B/rec",
            "raw rec/s",
            "local/raw",
            "s3/raw",
            "python/raw",
            "CPU local",
            "CPU s3",
            "CPU py",
            "local/python",
            "checks"
        );
        for s in &r.shapes {
            let find = |p: &str| s.rows.iter().find(|r| r.name.starts_with(p));
            let cpu = |p: &str| find(p).map(|r| r.cpu_s_per_gb);
            println!(
                "{:<12} {:>6.0} {:>10} {:>9} {:>7} {:>10} {:>9} {:>7} {:>7} {:>12} {:>7}",
                s.shape,
                s.mean_record_bytes,
                opt(find("raw").map(|r| r.records_per_s), 0),
                opt(s.ratios.local_over_raw, 3),
                opt(s.ratios.s3_over_raw, 3),
                opt(s.ratios.baseline_over_raw, 3),
                opt(cpu("landfall-local"), 2),
                opt(cpu("landfall-s3"), 2),
                opt(cpu("python"), 2),
                opt(s.ratios.local_cpu_over_baseline, 3),
                pass(s.ok)
            );
        }
    }
}

pub fn print_latency(env: &Env, r: &mode_latency::Report) {
    print_env(env, "latency");
    for s in &r.shapes {
        println!();
        println!(
            "== {}: ~{:.0} B records, {} partitions, {}, max_age_ms {} ==",
            s.shape, s.mean_record_bytes, s.partitions, r.format, s.max_age_ms
        );
        match &s.ceiling {
            Some(c) => println!(
                "ceiling          raw consumer on a backlog of {} records: {:.0} records/s steady ({:.0} overall)",
                c.records,
                c.raw.steady_records_per_s,
                c.raw.records as f64 / c.raw.seconds
            ),
            None => println!("ceiling          not measured (--rate given)"),
        }
        println!(
            "produce          target {:.0} records/s for {:.1} s: {} records, {:.0} records/s, {:.1} MB/s achieved",
            s.target_rate,
            s.produce.seconds,
            s.produce.records,
            s.produce.records_per_s,
            s.produce.mb_per_s
        );
        println!(
            "latency          produce -> marker over every record: {}",
            lat(&s.latency)
        );
        println!(
            "                 per batch, its oldest record: {}",
            lat(&s.batch_latency)
        );
        let l = &s.landfall;
        println!(
            "landfall         {:.1} CPU-s ({:.2} CPU-s/GB), peak RSS {:.0} MB, max buffered {:.0} MB",
            l.cpu_seconds,
            s.cpu_s_per_gb,
            l.peak_rss_bytes as f64 / MB,
            l.max_buffered_bytes / MB
        );
        print_sink("landfall-local", l, &s.landed);
        println!(
            "p99 check        {}: p99 {} s <= max_age_ms + 1 s = {} s",
            pass(s.p99_ok),
            secs(s.latency.map(|l| l.p99_ms)),
            secs(Some(s.p99_limit_ms))
        );
    }
}

pub fn print_memory(env: &Env, r: &mode_memory::Report) {
    print_env(env, "memory");
    println!();
    println!(
        "== {}: {} records = {:.1} MB over {} partitions, max_buffered_bytes {} ({:.0} MiB), max_file_bytes {} ==",
        r.shape,
        r.records,
        r.input_bytes as f64 / MB,
        r.partitions,
        r.max_buffered_bytes,
        r.max_buffered_bytes as f64 / MIB,
        r.max_file_bytes
    );
    println!(
        "produce          {:>8.1} s  {:>9.0} records/s  {:>7.1} MB/s",
        r.produce.seconds, r.produce.records_per_s, r.produce.mb_per_s
    );
    let l = &r.landfall;
    println!(
        "landfall         {:.1} s, {:.0} records/s, {:.1} CPU-s ({:.2} CPU-s/GB)",
        l.seconds,
        r.records as f64 / l.seconds,
        l.cpu_seconds,
        r.cpu_s_per_gb
    );
    println!(
        "memory           peak RSS {:.1} MiB (VmHWM), max sampled VmRSS {:.1} MiB at {:.1} s (all consumed at {:.1} s; the shutdown flush follows), max landfall_buffered_bytes {:.1} MiB, max paused partitions {}",
        r.peak_rss_mib,
        r.max_sampled_rss_mib,
        r.max_sampled_rss_at_s,
        r.all_consumed_at_s,
        r.max_buffered_mib,
        r.max_partitions_paused
    );
    println!("  consumed   at s    VmRSS MiB  buffered MiB  paused");
    for p in &r.series {
        println!(
            "  {:>6.0}%  {:>6.1}  {:>11.1}  {:>12.1}  {:>6}",
            p.consumed_fraction * 100.0,
            p.t,
            p.rss_mib,
            p.buffered_mib,
            p.paused
        );
    }
    print_sink("landfall-local", l, &r.landed);
    println!(
        "RSS check        {}: peak RSS {:.1} MiB <= {:.0} MiB",
        pass(r.rss_ok),
        r.peak_rss_mib,
        r.rss_target_mib
    );
}
