//! The whole shutdown — final land, group leave, runtime drop — ends within
//! `runtime.shutdown_timeout_ms` of SIGTERM, whatever the store and the broker do meanwhile, so
//! an orchestrator's grace period derived from it is never cut short by SIGKILL. Nothing is lost
//! when the deadline passes: a restart lands every offset exactly once.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use landfall_runtime::SinkStores;
use landfall_testkit::{
    assert_exactly_once, eventually, json_record, landed_offsets, produce, producer, write_config,
    S3Server, SinkProcess,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy in front of the store that can stop answering: once stalled, bytes in either
/// direction are held (connections stay open, nothing is answered), as when a store or the
/// network to it hangs.
struct StallingProxy {
    addr: SocketAddr,
    stall: Arc<AtomicBool>,
}

impl StallingProxy {
    async fn start(upstream: SocketAddr) -> StallingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stall = Arc::new(AtomicBool::new(false));
        let s = stall.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let stall = s.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pipe(cr, sw, stall.clone()), pipe(sr, cw, stall));
                });
            }
        });
        StallingProxy { addr, stall }
    }

    fn stall(&self) {
        self.stall.store(true, Ordering::SeqCst);
    }

    fn answer(&self) {
        self.stall.store(false, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stall: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        while stall.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Run a sink until it has consumed everything, stall the store (and kill the broker if asked),
/// SIGTERM it and measure how long it takes to exit. Then restart with everything answering and
/// check that every offset lands exactly once.
async fn shutdown_with_stalled_store(kill_broker: bool) {
    const SHUTDOWN_TIMEOUT_MS: u64 = 4000;
    let mut broker = broker();
    let topic = unique("shutdown");
    broker.create_topic(&topic, 2);
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        2,
        (0..400).map(|i| (i, json_record(i))),
    )
    .await;
    let s3 = S3Server::start();
    let proxy = StallingProxy::start(([127, 0, 0, 1], s3.port).into()).await;
    let dir = test_dir();
    let t = Target {
        data: "s3://lake/raw".into(),
        markers: "s3://lake/_landfall".into(),
        options: landfall_testkit::s3_options(&format!("http://{}", proxy.addr)),
    };
    // Nothing flushes before SIGTERM: every record waits in a buffer for the final land.
    let toml = sink_toml(
        "shutdown",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_age_ms = 600000",
        &format!("[runtime]\nshutdown_timeout_ms = {SHUTDOWN_TIMEOUT_MS}\n"),
    );
    let f = write_config(dir.path(), "shutdown", &toml);
    let bin = &landfall_bin();
    let mut sink = SinkProcess::start(bin, &f, &[], dir.path().join("first.log"));
    eventually("every record consumed", Duration::from_secs(60), || async {
        (sink.metric("landfall_records_consumed_total") == Some(400.0)).then_some(())
    })
    .await;

    proxy.stall();
    if kill_broker {
        broker.kill();
    }
    let sent = Instant::now();
    sink.signal("TERM");
    let limit = Duration::from_millis(SHUTDOWN_TIMEOUT_MS);
    // Await the exit with a deadline well past the limit, so an overrun is measured, not cut.
    let status = loop {
        if let Some(s) = sink.try_wait() {
            break Some(s);
        }
        if sent.elapsed() > limit + Duration::from_secs(60) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = sent.elapsed();
    eprintln!(
        "shutdown (store stalled{}): exited after {took:?} with {status:?}; shutdown_timeout_ms = {SHUTDOWN_TIMEOUT_MS}",
        if kill_broker { ", broker killed" } else { "" }
    );
    let status = status.unwrap_or_else(|| panic!("no exit: {}", sink.log_tail(40)));
    assert!(
        took <= limit,
        "shutdown took {took:?}, more than shutdown_timeout_ms = {limit:?}:\n{}",
        sink.log_tail(40)
    );
    assert_eq!(status.code(), Some(2), "deadline passed: exit 2");
    let log = std::fs::read_to_string(&sink.log).unwrap();
    assert!(
        log.contains("shutdown deadline passed with 2 partition(s) not landed"),
        "{}",
        sink.log_tail(20)
    );
    drop(sink);

    // Nothing is lost: with the store and the broker answering again, a restart lands it all.
    proxy.answer();
    if kill_broker {
        broker.start_again();
    }
    // A group of its own: tansu 0.6.0 can keep a group stuck on a member that left abruptly
    // (docs/testing.md); the store, not the group, says where each partition continues.
    // Age flushes again, so the restart lands without a signal.
    let toml = toml
        .replace("[kafka]\n", "[kafka]\ngroup_id = \"shutdown-restart\"\n")
        .replace("max_age_ms = 600000", "max_age_ms = 500");
    let f = write_config(dir.path(), "shutdown", &toml);
    let cfg = parse(&toml);
    let st = SinkStores::open(&cfg).expect("stores");
    let again = SinkProcess::start(bin, &f, &[], dir.path().join("second.log"));
    let ms = await_landed(&st.markers, "shutdown", &produced, Duration::from_secs(120)).await;
    assert_eq!(again.terminate(Duration::from_secs(30)), Some(0));
    let landed = landed_offsets(&st.data, &ms).await;
    assert_exactly_once(&topic, &produced, &ms, &landed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_timeout_when_the_store_stops_answering() {
    shutdown_with_stalled_store(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_timeout_when_store_and_broker_are_gone() {
    shutdown_with_stalled_store(true).await;
}
