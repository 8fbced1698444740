//! Store conformance: one set of checks of what Landfall's commit protocol needs from an object
//! store, generic over the backend (in the style of object_store's `integration.rs`), run against
//! every backend: local disk, object_store's `InMemory`, moto's S3 server and the GCS fixture.
//!
//! Each check is an async fn taking the backend's name (for the figures it prints) and a fresh
//! [`SinkStores`] under a prefix of its own, so all checks of a backend share one moto or fixture
//! process. Every check goes through Landfall's own code paths (`io::create`, `commit_record`,
//! `recover_partition`, `land`, `Publisher`), not through object_store directly.
//!
//! A backend's checks run one after another; a failing check is reported by name and the rest
//! still run, so one run gives the whole row of the checks × backends matrix.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{gcs_fixture, gcs_options, parse, sink_toml, test_dir, unique, Target};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use landfall_core::buffer::BufferFormat;
use landfall_core::keys::{batch_marker_key, commit_dir, commit_key, genesis_key, index_key};
use landfall_core::manifest::{
    rfc3339_ms, IndexEntry, Landed, Manifest, OffsetRange, FORMAT_VERSION,
};
use landfall_runtime::land::{land, LandSettings};
use landfall_runtime::publish::Publisher;
use landfall_runtime::SinkStores;
use landfall_store::commit::commit_record;
use landfall_store::io::{self, Created};
use landfall_store::recovery::{is_published, marker_key_of, recover_partition, Hint, IfNew};
use landfall_store::{Location, OpenOptions};
use landfall_testkit::{sealed_json_batch, S3Server};

const SINK: &str = "conf";
const TOPIC: &str = "orders";
/// A fixed landing time (2026-09-21T14:13:20Z), so marker keys are deterministic.
const LANDED_AT_MS: i64 = 1_790_000_000_000;

type Check = fn(&'static str, SinkStores) -> BoxFuture<'static, ()>;

/// Every check of the suite, in the order they run.
fn checks() -> Vec<(&'static str, Check)> {
    vec![
        ("create_only_fence", |b, s| {
            Box::pin(create_only_fence(b, s))
        }),
        ("own_attempt_after_unknown_outcome", |b, s| {
            Box::pin(own_attempt_after_unknown_outcome(b, s))
        }),
        ("recovery_hint_listing_genesis", |b, s| {
            Box::pin(recovery_hint_listing_genesis(b, s))
        }),
        ("marker_repair_after_crash", |b, s| {
            Box::pin(marker_repair_after_crash(b, s))
        }),
        ("listing_order_and_prefixes", |b, s| {
            Box::pin(listing_order_and_prefixes(b, s))
        }),
    ]
}

/// Run every check against one backend. `open` gives fresh stores under a unique prefix.
async fn run_suite(backend: &'static str, open: impl Fn(&str) -> SinkStores) {
    let mut failed = Vec::new();
    for (check, run) in checks() {
        let stores = open(&unique(&format!("{backend}-{check}")));
        // A task of its own, so a failed assertion is caught and the next check still runs.
        match tokio::spawn(run(backend, stores)).await {
            Ok(()) => println!("{backend}: {check}: ok"),
            Err(e) => {
                // The panic hook has already printed the assertion that failed.
                println!("{backend}: {check}: FAILED ({e})");
                failed.push(check);
            }
        }
    }
    assert!(failed.is_empty(), "{backend}: failed checks {failed:?}");
}

/// The three locations of a sink under `base` (a URL without trailing slash).
fn open_under(base: &str, options: &BTreeMap<String, String>) -> SinkStores {
    let opts = OpenOptions {
        options: options.clone(),
        max_retries: 3,
        request_timeout: Duration::from_secs(10),
    };
    let open = |sub: &str| {
        let url = url::Url::parse(&format!("{base}/{sub}")).expect("url");
        Location::open(&url, &opts).unwrap_or_else(|e| panic!("open {url}: {e}"))
    };
    SinkStores {
        data: open("raw"),
        markers: open("_landfall"),
        dead_letters: open("dead"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_local_disk() {
    let dir = test_dir();
    let root = dir.path().to_path_buf();
    run_suite("local", |prefix| {
        open_under(
            &format!("file://{}/{prefix}", root.display()),
            &BTreeMap::new(),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    run_suite("memory", |prefix| {
        let at = |sub: &str| {
            Location::from_store(
                store.clone(),
                "memory://conformance",
                &format!("{prefix}/{sub}"),
            )
        };
        SinkStores {
            data: at("raw"),
            markers: at("_landfall"),
            dead_letters: at("dead"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_s3_moto() {
    let s3 = S3Server::start();
    let options = s3.options();
    run_suite("s3", |prefix| {
        open_under(&format!("s3://lake/{prefix}"), &options)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_gcs_fixture() {
    let gcs = gcs_fixture().await;
    let options = gcs_options(&gcs);
    run_suite("gcs", |prefix| {
        open_under(&format!("gs://lake/{prefix}"), &options)
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A commit record of `SINK`/`TOPIC` for `offsets`, as `land` would assemble it (no files: the
/// checks that use it are about the records, not the data).
fn manifest(
    markers: &Location,
    partition: i32,
    offsets: OffsetRange,
    writer_id: &str,
    attempt_id: &str,
    landed_at_ms: i64,
) -> Manifest {
    let ckey = commit_key(SINK, TOPIC, partition, offsets.first);
    let mkey = batch_marker_key(SINK, TOPIC, partition, offsets.first, landed_at_ms);
    let records = (offsets.last - offsets.first + 1) as u64;
    Manifest {
        format_version: FORMAT_VERSION,
        sink: SINK.into(),
        topic: TOPIC.into(),
        partition,
        offsets,
        gaps: vec![],
        records,
        rows: records,
        dead_lettered: 0,
        files: vec![],
        dead_letter_files: vec![],
        schema_fingerprint: None,
        event_time: None,
        writer_id: writer_id.into(),
        attempt_id: attempt_id.into(),
        landed_at: rfc3339_ms(landed_at_ms),
        flush_reason: "records".into(),
        commit_url: markers.url_of(&markers.path(&ckey)),
        marker_url: markers.url_of(&markers.path(&mkey)),
    }
}

fn if_new<'a>(offset: i64, writer_id: &'a str) -> IfNew<'a> {
    IfNew {
        offset: Some(offset),
        writer_id,
        now_rfc3339: "2026-09-21T00:00:00Z",
    }
}

async fn recover(
    markers: &Location,
    partition: i32,
    hint: Option<i64>,
) -> landfall_store::recovery::Recovered {
    recover_partition(
        markers,
        SINK,
        TOPIC,
        partition,
        hint.map(|committed_offset| Hint { committed_offset }),
        if_new(0, "recovering-writer"),
    )
    .await
    .expect("recovery")
}

// ---------------------------------------------------------------------------------------------
// 1. The create-only fence (invariant 4).

async fn create_only_fence(backend: &'static str, st: SinkStores) {
    let loc = &st.markers;

    // Two writers, one after the other.
    let key = "fence/sequential.json";
    let a = io::create(loc, key, Bytes::from_static(b"writer-a"))
        .await
        .unwrap();
    let b = io::create(loc, key, Bytes::from_static(b"writer-b"))
        .await
        .unwrap();
    assert_eq!(
        (a, b),
        (Created::Yes, Created::AlreadyExists),
        "{backend}: sequential creates"
    );
    let stored = io::get(loc, key)
        .await
        .unwrap()
        .expect("the winner's object");
    assert_eq!(
        stored,
        Bytes::from_static(b"writer-a"),
        "{backend}: stored bytes"
    );
    println!("{backend}: fence: sequential creates -> Yes, AlreadyExists; stored bytes are the first writer's");

    // Racers started together on one key, several rounds: exactly one wins each round, and the
    // object holds the winner's bytes. A pass proves less on some backends than on others:
    // local disk (hard link), InMemory and the GCS fixture decide under one lock or syscall,
    // but moto 5.2.5 checks If-None-Match and then stores in two steps without a lock
    // (`s3/responses.py`), so it can only fail to show a race, not prove there is none.
    const RACERS: usize = 8;
    const ROUNDS: usize = 5;
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let key = format!("fence/race-{round}.json");
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let (loc, key, start) = (loc.clone(), key.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    io::create(&loc, &key, Bytes::from(format!("racer-{i}"))).await
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut refused = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.expect("racer task") {
                Ok(Created::Yes) => won.push(i),
                Ok(Created::AlreadyExists) => refused += 1,
                Err(e) => panic!("{backend}: round {round}: racer {i} failed: {e}"),
            }
        }
        assert_eq!(
            (won.len(), refused),
            (1, RACERS - 1),
            "{backend}: round {round}: winners {won:?}"
        );
        let stored = io::get(loc, &key)
            .await
            .unwrap()
            .expect("the winner's object");
        assert_eq!(
            stored,
            Bytes::from(format!("racer-{}", won[0])),
            "{backend}: round {round}: stored bytes are not the winner's"
        );
        winners.push(won[0]);
    }
    println!(
        "{backend}: fence: {RACERS} racers x {ROUNDS} rounds, 1 winner each (racers {winners:?}), {} refused each, stored bytes the winner's",
        RACERS - 1
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Recognising one's own commit after an unknown outcome.

async fn own_attempt_after_unknown_outcome(backend: &'static str, st: SinkStores) {
    let m = &st.markers;
    let offsets = OffsetRange::new(100, 199);
    let ckey = commit_key(SINK, TOPIC, 0, offsets.first);
    let first = manifest(m, 0, offsets, "writer-a", "attempt-a", LANDED_AT_MS);
    match commit_record(m, &ckey, &first).await.unwrap() {
        Landed::Committed(c) => assert_eq!(*c, first, "{backend}: first commit"),
        Landed::Lost(w) => panic!("{backend}: first commit lost to {}", w.writer_id),
    }

    // The retry after a timeout: same batch, same attempt id, assembled a second later (so its
    // landing time and marker key differ). It finds its own record and takes the stored one.
    let retry = manifest(m, 0, offsets, "writer-a", "attempt-a", LANDED_AT_MS + 1_000);
    match commit_record(m, &ckey, &retry).await.unwrap() {
        Landed::Committed(c) => {
            assert_eq!(*c, first, "{backend}: the retry must get the stored record");
            assert_ne!(c.marker_url, retry.marker_url);
        }
        Landed::Lost(w) => panic!(
            "{backend}: the retry took its own commit for a lost race (winner attempt {})",
            w.attempt_id
        ),
    }

    // Another writer of the same range (a zombie): it loses, and learns who won.
    let zombie = manifest(m, 0, offsets, "writer-z", "attempt-z", LANDED_AT_MS + 2_000);
    match commit_record(m, &ckey, &zombie).await.unwrap() {
        Landed::Lost(w) => {
            assert_eq!(
                (w.writer_id.as_str(), w.attempt_id.as_str()),
                ("writer-a", "attempt-a"),
                "{backend}: the winner named"
            );
            assert_eq!(*w, first);
        }
        Landed::Committed(_) => panic!("{backend}: a second writer's commit was accepted"),
    }
    let stored = Manifest::from_json(&io::get(m, &ckey).await.unwrap().unwrap()).unwrap();
    assert_eq!(stored, first, "{backend}: the stored record changed");
    println!(
        "{backend}: own attempt: retry with attempt-a -> Committed (landed_at {} of the first try); attempt-z -> Lost to writer-a/attempt-a",
        stored.landed_at
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Recovery: through the hint, through listing, and genesis.

async fn recovery_hint_listing_genesis(backend: &'static str, st: SinkStores) {
    let m = &st.markers;
    let publisher = Publisher::new(m.clone());

    // Genesis: an empty store. The first writer decides; a second one offering another offset
    // agrees with it.
    let g1 = recover_partition(m, SINK, TOPIC, 0, None, if_new(0, "writer-1"))
        .await
        .unwrap();
    let g2 = recover_partition(m, SINK, TOPIC, 0, None, if_new(7, "writer-2"))
        .await
        .unwrap();
    assert_eq!((g1.via, g1.next, g1.listed), ("genesis", 0, 0), "{backend}");
    assert_eq!(
        (g2.via, g2.next),
        ("genesis", 0),
        "{backend}: second writer"
    );
    assert!(g1.tip.is_none() && !g1.tip_unpublished);
    println!(
        "{backend}: recovery: genesis offset 0 chosen by writer-1; writer-2 offering 7 agrees on 0"
    );

    // Racing genesis on another partition: four writers offering different offsets all agree.
    let racers: Vec<_> = (0..4i64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let writer = format!("racer-{i}");
                recover_partition(&m, SINK, TOPIC, 1, None, if_new(100 + i, &writer))
                    .await
                    .map(|r| (r.via, r.next))
            })
        })
        .collect();
    let mut agreed = Vec::new();
    for r in racers {
        agreed.push(r.await.unwrap().unwrap());
    }
    let stored: landfall_core::manifest::Genesis = serde_json::from_slice(
        &io::get(m, &genesis_key(SINK, TOPIC, 1))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(
        agreed
            .iter()
            .all(|&(via, next)| via == "genesis" && next == stored.first_offset),
        "{backend}: racing genesis {agreed:?}, stored {stored:?}"
    );
    assert_eq!(
        stored.writer_id,
        format!("racer-{}", stored.first_offset - 100)
    );
    println!(
        "{backend}: recovery: 4 racing genesis writers offering 100..=103 all continue at {} ({})",
        stored.first_offset, stored.writer_id
    );

    // Five commits of ten offsets each on partition 0, with their post-commit step.
    const COMMITS: i64 = 5;
    for c in 0..COMMITS {
        let rec = manifest(
            m,
            0,
            OffsetRange::new(10 * c, 10 * c + 9),
            "writer-1",
            &format!("attempt-{c}"),
            LANDED_AT_MS + c,
        );
        let ckey = commit_key(SINK, TOPIC, 0, rec.offsets.first);
        assert!(matches!(
            commit_record(m, &ckey, &rec).await.unwrap(),
            Landed::Committed(_)
        ));
        publisher.publish(&rec).await.unwrap();
    }
    let end = 10 * COMMITS;

    // The group's offset is the tip's `next`: its index entry names the tip, and the listing
    // after the tip holds only genesis.json.
    let r = recover(m, 0, Some(end)).await;
    assert_eq!(
        (r.via, r.next, r.listed),
        ("hint", end, 1),
        "{backend}: hint at the tip"
    );
    assert!(!r.tip_unpublished);
    println!(
        "{backend}: recovery: hint {end} -> via hint, next {end}, listed {}",
        r.listed
    );

    // The group's offset lags two commits: two later records (and genesis.json) are listed.
    let lag = end - 20;
    let r = recover(m, 0, Some(lag)).await;
    assert_eq!(
        (r.via, r.next, r.listed),
        ("hint+listing", end, 3),
        "{backend}: hint two commits behind"
    );
    println!(
        "{backend}: recovery: hint {lag} -> via hint+listing, next {end}, listed {}",
        r.listed
    );

    // No hint: the whole commit directory (five records and genesis.json).
    let r = recover(m, 0, None).await;
    assert_eq!(
        (r.via, r.next, r.listed),
        ("listing", end, 6),
        "{backend}: no hint"
    );
    // A hint without an index entry (another deployment's offsets).
    let r = recover(m, 0, Some(777)).await;
    assert_eq!(
        (r.via, r.next, r.listed),
        ("listing", end, 6),
        "{backend}: unknown hint"
    );
    // A hint whose index entry names a record the store does not hold (a wiped bucket).
    io::put(
        m,
        &index_key(SINK, TOPIC, 0, 5_000),
        Bytes::from(serde_json::to_vec(&IndexEntry { first: 4_990 }).unwrap()),
    )
    .await
    .unwrap();
    let r = recover(m, 0, Some(5_000)).await;
    assert_eq!(
        (r.via, r.next, r.listed),
        ("listing", end, 6),
        "{backend}: stale hint"
    );
    assert_eq!(
        r.tip.as_ref().map(|t| t.attempt_id.as_str()),
        Some("attempt-4")
    );
    println!(
        "{backend}: recovery: no hint / unknown hint 777 / stale hint 5000 -> via listing, next {end}, listed 6"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The post-commit step and its repair after a crash between commit record and marker.

async fn marker_repair_after_crash(backend: &'static str, st: SinkStores) {
    let cfg = parse(&sink_toml(
        SINK,
        TOPIC,
        "127.0.0.1:1",
        &Target::local(std::path::Path::new("/nonexistent")),
        "",
        "",
    ));
    let fmt = BufferFormat::from_config(&cfg);
    let settings = LandSettings {
        sink: SINK.into(),
        writer_id: "writer-1".into(),
        multipart_threshold_bytes: 1 << 30,
        multipart_part_bytes: 8 << 20,
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(2));
    let publisher = Publisher::new(st.markers.clone());
    let m = &st.markers;

    // Two batches through the real landing code.
    let mut landed = Vec::new();
    for (i, offsets) in [OffsetRange::new(0, 19), OffsetRange::new(20, 49)]
        .into_iter()
        .enumerate()
    {
        let batch = sealed_json_batch(&fmt, TOPIC, 0, offsets, &format!("attempt-{i}"));
        let when = LANDED_AT_MS + i as i64;
        match land(&st, &settings, &uploads, &publisher, &batch, || when)
            .await
            .unwrap()
        {
            Landed::Committed(c) => landed.push(*c),
            Landed::Lost(w) => panic!("{backend}: lost to {}", w.writer_id),
        }
    }
    // Marker after data: every file a manifest lists is there.
    let mut files = 0;
    for c in &landed {
        assert!(
            is_published(m, c).await.unwrap(),
            "{backend}: fresh landing published"
        );
        for f in &c.files {
            let key = st
                .data
                .key_of_url(&f.url)
                .expect("file under the data location");
            assert!(
                io::exists(&st.data, &key).await.unwrap(),
                "{backend}: {} missing",
                f.url
            );
            files += 1;
        }
    }
    assert!(files >= 2, "{backend}: {files} files");
    let tip = &landed[1];

    // The crash: the tip's commit record is durable, its index entry and marker are not.
    let marker = marker_key_of(m, tip).unwrap();
    let index = index_key(SINK, TOPIC, 0, tip.offsets.next);
    io::delete(m, &m.path(&marker)).await.unwrap();
    io::delete(m, &m.path(&index)).await.unwrap();
    assert!(!io::exists(m, &marker).await.unwrap());

    // The group's offset still points at the first batch (its offset commit came after its
    // index entry); the second batch's never happened.
    let r = recover(m, 0, Some(landed[0].offsets.next)).await;
    assert_eq!(
        (r.via, r.next, r.tip_unpublished),
        ("hint+listing", tip.offsets.next, true),
        "{backend}: recovery after the crash"
    );
    let found = r.tip.expect("tip");
    assert_eq!(&found, tip);
    let r = recover(m, 0, None).await;
    assert_eq!(
        (r.via, r.tip_unpublished),
        ("listing", true),
        "{backend}: listing sees it too"
    );

    // Recovery's repair is the same post-commit step.
    publisher.publish(&found).await.unwrap();
    let restored = Manifest::from_json(&io::get(m, &marker).await.unwrap().expect("marker"))
        .expect("marker is a manifest");
    assert_eq!(&restored, tip, "{backend}: restored marker");
    let entry: IndexEntry =
        serde_json::from_slice(&io::get(m, &index).await.unwrap().expect("index entry")).unwrap();
    assert_eq!(
        entry,
        IndexEntry {
            first: tip.offsets.first
        },
        "{backend}: index entry"
    );
    let r = recover(m, 0, Some(tip.offsets.next)).await;
    assert_eq!(
        (r.via, r.next, r.tip_unpublished),
        ("hint", tip.offsets.next, false),
        "{backend}: recovery after the repair"
    );
    println!(
        "{backend}: marker repair: 2 batches landed ({files} files), tip [{}, {}] lost marker and index -> tip_unpublished true via hint+listing; after publish: false via hint, index entry first={}",
        tip.offsets.first, tip.offsets.last, entry.first
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Listing: commit keys in offset order, only under the partition's own directory.

async fn listing_order_and_prefixes(backend: &'static str, st: SinkStores) {
    let m = &st.markers;
    let dir = commit_dir(SINK, TOPIC, 0);
    // Created out of order; the keys are zero-padded, so key order is offset order.
    let firsts: [i64; 6] = [1_000, 0, 12_345_678_901, 7, 99_999, 100];
    for first in firsts {
        let rec = manifest(m, 0, OffsetRange::new(first, first), "w", "a", LANDED_AT_MS);
        io::create(
            m,
            &commit_key(SINK, TOPIC, 0, first),
            Bytes::from(rec.to_json()),
        )
        .await
        .unwrap();
    }
    io::create(m, &genesis_key(SINK, TOPIC, 0), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    // Neighbours that must not show up: other sinks (one whose name extends ours), another
    // partition, and a directory whose name extends the partition's.
    let neighbours = [
        format!("_commits/other-sink/{TOPIC}/00000/{:020}.json", 3),
        format!("_commits/{SINK}-x/{TOPIC}/00000/{:020}.json", 3),
        commit_key(SINK, TOPIC, 1, 3),
        format!("{dir}-old/{:020}.json", 3),
        format!("{dir}.json"),
    ];
    for k in &neighbours {
        io::create(m, k, Bytes::from_static(b"{}")).await.unwrap();
    }

    let names = |listed: Vec<io::Listed>| -> Vec<String> {
        listed
            .iter()
            .map(|l| m.relative(&l.path).expect("under the location").to_string())
            .collect()
    };
    let mut sorted = firsts;
    sorted.sort();
    let mut expected: Vec<String> = sorted
        .iter()
        .map(|&f| commit_key(SINK, TOPIC, 0, f))
        .collect();
    expected.push(genesis_key(SINK, TOPIC, 0));

    let all = names(io::list(m, &dir, None).await.unwrap());
    assert_eq!(
        all, expected,
        "{backend}: listing of {dir} (order as returned)"
    );
    // Whether the backend itself lists in key order: object_store leaves it unspecified and
    // `io::list` sorts, so this is a figure, not a check.
    let raw: Vec<object_store::path::Path> = m
        .store
        .list(Some(&m.path(&dir)))
        .map_ok(|o| o.location)
        .try_collect()
        .await
        .unwrap();
    let raw_order = if raw.windows(2).all(|w| w[0] < w[1]) {
        "in key order"
    } else {
        "not in key order (io::list sorts it)"
    };

    // After a key (recovery's listing after the hinted commit): only later keys, in order.
    let after = commit_key(SINK, TOPIC, 0, 100);
    let later = names(io::list(m, &dir, Some(&after)).await.unwrap());
    assert_eq!(later, expected[3..], "{backend}: listing after {after}");

    // A sink's whole commit directory (what `landfall verify` loads) holds both partitions and
    // nothing of the other sinks.
    let sink_dir = format!("_commits/{SINK}");
    let whole = names(io::list(m, &sink_dir, None).await.unwrap());
    assert!(
        whole.iter().all(|k| k.starts_with(&format!("{sink_dir}/"))),
        "{backend}: {sink_dir} lists {whole:?}"
    );
    assert_eq!(whole.len(), expected.len() + 3, "{backend}: {whole:?}");
    println!(
        "{backend}: listing: {} keys under the partition in offset order {sorted:?} + genesis.json; {} after offset 100; {} under _commits/{SINK}; {} neighbours excluded; the backend's own listing is {raw_order}",
        all.len(),
        later.len(),
        whole.len(),
        neighbours.len()
    );
}
