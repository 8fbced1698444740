//! `landfall`: the command line. Wiring, signals and exit codes only; anyhow lives here and
//! nowhere else.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use landfall_core::config::{check_sinks, config_files_in, SinkConfig, TopicSelection};
use landfall_core::coverage::analyze_batches;
use landfall_core::keys::FileKind;
use landfall_core::orphans::{GcView, Verdict};
use landfall_core::shutdown::ShutdownPlan;
use landfall_runtime::{run_sink, Metrics, SinkContext, SinkStores};
use landfall_store::{io, scan};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "landfall",
    version,
    about = "Land Kafka topics as Parquet files with completion markers, exactly once"
)]
struct Cli {
    /// Log format: `text` (human) or `json` (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "LANDFALL_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct Configs {
    /// A sink config file (repeatable).
    #[arg(long = "config", short = 'c')]
    files: Vec<PathBuf>,
    /// A directory whose every `*.toml` is a sink config.
    #[arg(long = "config-dir")]
    dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run sinks until SIGTERM/SIGINT, then land what is buffered and exit.
    Run {
        #[command(flatten)]
        configs: Configs,
        /// Address for /metrics, /healthz (liveness), /readyz (readiness) and /status (JSON).
        #[arg(long, env = "LANDFALL_METRICS_ADDR", default_value = "0.0.0.0:9464")]
        metrics_addr: SocketAddr,
        /// Writer id recorded in manifests (default: hostname-pid-random).
        #[arg(long, env = "LANDFALL_WRITER_ID")]
        writer_id: Option<String>,
    },
    /// Check configs and report every problem with file, line and a hint.
    Validate {
        #[command(flatten)]
        configs: Configs,
    },
    /// Report, per partition, the offsets the committed markers cover and the skips they explain
    /// (retention); exit 1 on an overlap or a hole between commits.
    Verify {
        #[command(flatten)]
        configs: Configs,
        /// Also check that every listed file exists with the listed size.
        #[arg(long)]
        check_files: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find data files no marker lists (crash between upload and commit, refused zombies).
    Gc {
        #[command(flatten)]
        configs: Configs,
        /// Only files older than this are orphans; younger ones may be landing right now.
        #[arg(long, default_value_t = 3600)]
        min_age_secs: u64,
        /// Delete them (default is a dry run that lists them).
        #[arg(long)]
        delete: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANDFALL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        // Fields at the top level (`"rows": 3`, not `"fields": {"rows": 3}`): what log
        // shippers index without a parsing rule.
        b.json().flatten_event(true).init();
    } else {
        b.init();
    }
}

/// Load every config; all problems of all files are reported before giving up.
fn load(configs: &Configs) -> Result<Vec<SinkConfig>, Vec<String>> {
    let mut files = configs.files.clone();
    if let Some(dir) = &configs.dir {
        match config_files_in(dir) {
            Ok(f) => files.extend(f),
            Err(e) => {
                return Err(vec![format!(
                    "{}: cannot read the directory: {e}",
                    dir.display()
                )])
            }
        }
    }
    if files.is_empty() {
        return Err(vec![
            "no sink config given: use --config FILE or --config-dir DIR".into(),
        ]);
    }
    let mut sinks = Vec::new();
    let mut problems = Vec::new();
    for f in &files {
        match SinkConfig::load(f) {
            Ok(c) => sinks.push(c),
            Err(e) => problems.extend(e.0.iter().map(|p| p.to_string())),
        }
    }
    problems.extend(check_sinks(&sinks).iter().map(|p| p.to_string()));
    if problems.is_empty() {
        Ok(sinks)
    } else {
        Err(problems)
    }
}

fn stores(cfg: &SinkConfig) -> Result<SinkStores> {
    SinkStores::open(cfg).with_context(|| format!("sink `{}`", cfg.name))
}

fn writer_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &rand[..6])
}

/// When the process must have exited after a graceful shutdown began (the largest
/// `runtime.shutdown_timeout_ms` after it); `main` bounds the runtime's drop by it.
type ExitDeadline = Arc<Mutex<Option<Instant>>>;

async fn run(
    configs: Configs,
    metrics_addr: SocketAddr,
    writer: Option<String>,
    exit_deadline: ExitDeadline,
) -> Result<()> {
    // Signals first: an orchestrator may stop a pod that is still starting, and SIGTERM's default
    // action would kill it with a signal instead of a clean exit.
    let shutdown = CancellationToken::new();
    let signals = {
        let token = shutdown.clone();
        use tokio::signal::unix::{signal, SignalKind};
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut int =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        // Returns when the shutdown began: every phase of it is timed from there.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: shutting down"),
                _ = int.recv() => info!("SIGINT: shutting down"),
                _ = token.cancelled() => {}
            }
            token.cancel();
            Instant::now()
        })
    };
    let sinks = load(&configs).map_err(|p| anyhow::anyhow!(p.join("\n")))?;
    // The sinks shut down in parallel: the process exits within the largest of their timeouts.
    let exit_after = sinks
        .iter()
        .map(|s| ShutdownPlan::new(s.runtime.shutdown_timeout_ms).exit_until)
        .max()
        .unwrap_or_default();
    let writer = writer.unwrap_or_else(writer_id);
    let listener = landfall_runtime::http::bind(metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {metrics_addr}"))?;
    let metrics = Metrics::new();
    // Serve from the start: /healthz answers while the stores are probed, and /readyz says
    // what it waits for.
    let http = tokio::spawn(landfall_runtime::http::serve(
        listener,
        metrics.clone(),
        shutdown.clone(),
    ));

    // Open and probe every store before joining any group: wrong credentials or a missing bucket
    // end here with one line, before anything is consumed.
    let mut contexts = Vec::new();
    for cfg in sinks {
        let st = stores(&cfg)?;
        let probe =
            SinkStores::open_for_probe(&cfg).with_context(|| format!("sink `{}`", cfg.name))?;
        // Dead letters too: a forbidden or missing dead-letter bucket would otherwise surface
        // only at the first bad record, perhaps hours later, as a failing landing.
        for (key, loc) in [
            ("store.url", &probe.data),
            ("marker.prefix", &probe.markers),
            ("errors.dead_letter_url", &probe.dead_letters),
        ] {
            tokio::select! {
                r = io::preflight(loc, &writer) => r.map_err(|e| anyhow::anyhow!("sink `{}`: {key}: {e} — {}", cfg.name, e.cause()))?,
                _ = shutdown.cancelled() => {
                    info!("stopped before starting: nothing was consumed");
                    return Ok(());
                }
            }
        }
        contexts.push(SinkContext {
            config: cfg,
            stores: st,
            metrics: metrics.clone(),
            writer_id: writer.clone(),
        });
    }

    let mut tasks = tokio::task::JoinSet::new();
    for ctx in contexts {
        let token = shutdown.clone();
        let name = ctx.config.name.clone();
        tasks.spawn(async move { (name, run_sink(ctx, token).await) });
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (name, result) = joined.context("sink task panicked")?;
        if let Err(e) = result {
            error!(sink = %name, "{e}");
            failed.push(e.to_string());
            // One sink failing stops the process: the orchestrator restarts it whole, and a
            // half-running process hides the failure.
            shutdown.cancel();
        }
    }
    shutdown.cancel();
    let began = signals.await.unwrap_or_else(|_| Instant::now());
    let deadline = began + exit_after;
    *exit_deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
    // A scraper holding a connection open must not hold the exit.
    match tokio::time::timeout_at(deadline.into(), http).await {
        Ok(Ok(Err(e))) => error!("metrics endpoint: {e}"),
        Ok(_) => {}
        Err(_) => warn!("metrics endpoint still serving at the shutdown deadline; exiting anyway"),
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(failed.join("\n"))
    }
}

async fn verify(configs: Configs, check_files: bool, json: bool) -> Result<bool> {
    let sinks = load(&configs).map_err(|p| anyhow::anyhow!(p.join("\n")))?;
    let mut clean = true;
    let mut report = Vec::new();
    for cfg in sinks {
        let st = stores(&cfg)?;
        let (manifests, genesis) = scan::load_commits(&st.markers, &cfg.name).await?;
        type Batches<'a> = Vec<(
            landfall_core::manifest::OffsetRange,
            &'a [landfall_core::manifest::Gap],
        )>;
        let mut by_partition: BTreeMap<(String, i32), Batches<'_>> = BTreeMap::new();
        let mut rows: BTreeMap<(String, i32), (u64, u64)> = BTreeMap::new();
        for m in &manifests {
            by_partition
                .entry((m.topic.clone(), m.partition))
                .or_default()
                .push((m.offsets, m.gaps.as_slice()));
            let e = rows.entry((m.topic.clone(), m.partition)).or_default();
            e.0 += m.rows;
            e.1 += m.dead_lettered;
        }
        let topics: Vec<String> = match &cfg.topics {
            TopicSelection::Names(n) => n.clone(),
            TopicSelection::Regex(_) => by_partition
                .keys()
                .map(|(t, _)| t.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect(),
        };
        let kafka = cfg.kafka.clone();
        let watermarks: BTreeMap<(String, i32), (i64, i64)> =
            tokio::task::spawn_blocking(move || landfall_kafka::watermarks(&kafka, &topics))
                .await??
                .into_iter()
                .map(|(tp, w)| ((tp.topic.to_string(), tp.partition), w))
                .collect();
        let mut keys: Vec<(String, i32)> = watermarks.keys().cloned().collect();
        for k in by_partition.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys.sort();
        for key in keys {
            let g = genesis
                .iter()
                .find(|g| g.topic == key.0 && g.partition == key.1)
                .map(|g| g.first_offset);
            let cov = analyze_batches(g, by_partition.get(&key).map(Vec::as_slice).unwrap_or(&[]));
            let (low, high) = watermarks.get(&key).copied().unwrap_or((0, 0));
            // Skips are explained inside the manifests (retention); a hole between commits is
            // a missing commit record whatever the topic still holds.
            let ok = cov.ok();
            clean &= ok;
            let explained: Vec<String> = cov
                .explained
                .iter()
                .map(|g| format!("{}..={} {}", g.first, g.last, g.reason.as_str()))
                .collect();
            let (r, d) = rows.get(&key).copied().unwrap_or((0, 0));
            let pending = cov.next.map(|n| (high - n).max(0));
            if json {
                report.push(serde_json::json!({
                    "sink": cfg.name, "topic": key.0, "partition": key.1, "ok": ok,
                    "commits": cov.commits, "covered_from": cov.start, "covered_to_next": cov.next,
                    "gaps": cov.gaps, "unexplained_gaps": cov.gaps, "overlaps": cov.overlaps,
                    "explained_gaps": cov.explained, "skipped_offsets": cov.skipped(),
                    "bad_gaps": cov.bad_gaps,
                    "rows": r, "dead_lettered": d, "topic_earliest": low, "topic_latest": high,
                    "not_yet_landed": pending,
                }));
            } else {
                println!(
                    "{} {}[{}]: commits={} covered=[{}, {}) rows={} dead_lettered={} topic=[{}, {}) not_yet_landed={} gaps={:?} overlaps={:?} explained_gaps=[{}] skipped={}{}",
                    if ok { "OK  " } else { "FAIL" },
                    key.0, key.1, cov.commits,
                    cov.start.map_or("-".into(), |v| v.to_string()),
                    cov.next.map_or("-".into(), |v| v.to_string()),
                    r, d, low, high,
                    pending.map_or("-".into(), |v| v.to_string()),
                    cov.gaps, cov.overlaps,
                    explained.join(", "), cov.skipped(),
                    if cov.bad_gaps.is_empty() { String::new() } else { format!(" bad_gaps={:?}", cov.bad_gaps) },
                );
            }
        }
        if check_files {
            for problem in scan::missing_files(&st.data, &manifests).await? {
                clean = false;
                if !json {
                    println!("FAIL missing file: {problem}");
                } else {
                    report.push(serde_json::json!({"sink": cfg.name, "missing_file": problem}));
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(clean)
}

async fn gc(configs: Configs, min_age_secs: u64, delete: bool) -> Result<()> {
    let sinks = load(&configs).map_err(|p| anyhow::anyhow!(p.join("\n")))?;
    let cutoff = chrono::Utc::now() - chrono::Duration::seconds(min_age_secs as i64);
    for cfg in sinks {
        let st = stores(&cfg)?;
        // Every sink's commits under the marker prefix, not only this one's: a file another sink
        // lists is never an orphan. Which files are this sink's own is in their keys.
        let all = scan::load_all_commits(&st.markers).await?;
        let mut view = GcView::new(&cfg.name, &all, cutoff.timestamp_millis());
        let places = [
            (&st.data, FileKind::Data, view.topics()),
            (
                &st.dead_letters,
                FileKind::DeadLetters,
                vec![cfg.name.clone()],
            ),
        ];
        let mut found = Vec::new();
        for (loc, kind, dirs) in &places {
            for (l, v) in scan::judge(loc, *kind, dirs, &view).await? {
                found.push((*loc, *kind, l, v));
            }
        }
        if delete && found.iter().any(|f| f.3 == Verdict::Orphan) {
            // Re-check just before deleting: a landing may have committed since the first read.
            view.add_listed(&scan::load_all_commits(&st.markers).await?);
            for f in &mut found {
                f.3 = view.judge(f.1, f.2.path.as_ref(), f.2.last_modified.timestamp_millis());
            }
        }
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        for (loc, _, l, verdict) in found {
            if verdict != Verdict::Orphan {
                *kept.entry(format!("{verdict:?}")).or_default() += 1;
                continue;
            }
            println!(
                "{} {} ({} bytes, {})",
                if delete { "deleting" } else { "orphan" },
                loc.url_of(&l.path),
                l.size,
                l.last_modified
            );
            if delete {
                io::delete(loc, &l.path).await?;
            }
        }
        info!(sink = %cfg.name, ?kept, "gc: objects kept, by reason");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let exit_deadline = ExitDeadline::default();
    let run_exit_deadline = exit_deadline.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<bool> = rt.block_on(async move {
        match cli.command {
            Command::Run {
                configs,
                metrics_addr,
                writer_id,
            } => run(configs, metrics_addr, writer_id, run_exit_deadline)
                .await
                .map(|_| true),
            Command::Validate { configs } => match load(&configs) {
                Ok(sinks) => {
                    for s in sinks {
                        println!("{}: ok (sink `{}`)", s.source.display(), s.name);
                    }
                    Ok(true)
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    Ok(false)
                }
            },
            Command::Verify {
                configs,
                check_files,
                json,
            } => verify(configs, check_files, json).await,
            Command::Gc {
                configs,
                min_age_secs,
                delete,
            } => gc(configs, min_age_secs, delete).await.map(|_| true),
        }
    });
    // A consumer thread stuck leaving its group must not hold the process (dropping a runtime
    // waits for its blocking tasks): after a graceful shutdown, only until its deadline.
    let drop_within = match *exit_deadline.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(deadline) => deadline.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(5),
    };
    rt.shutdown_timeout(drop_within);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
