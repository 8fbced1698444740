//! The Kafka side (arrows 1 and 6 of the data flow): one consumer thread per sink.
//!
//! The thread owns an rdkafka `BaseConsumer` and never stops polling (librdkafka evicts a member
//! that does). It hands records to the sink task over a bounded channel; when the channel is full
//! it pauses its partitions and keeps polling. Rebalances are handed off synchronously, the way
//! Kafka's own `onPartitionsRevoked` works: inside librdkafka's rebalance callback the thread asks
//! the sink task where each new partition continues (the sink reads it from the object store) and,
//! on revoke, waits (bounded) while the sink lands what it buffered for those partitions.
//!
//! Every record is tagged with its partition's *epoch*. The sink bumps the epoch when it seeks
//! (after a lost commit race); records fetched before the seek carry the old epoch and are dropped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use landfall_core::config::{KafkaConfig, TopicSelection};
use landfall_core::{KafkaRecord, TopicPartition};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// A record with the epoch of its partition when it was fetched.
pub type Tagged = (KafkaRecord, u64);

/// A partition given to this member.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub tp: TopicPartition,
    /// The group's committed offset and its metadata (Landfall's recovery hint).
    pub committed: Option<(i64, String)>,
    /// Low and high watermarks when assigned.
    pub watermarks: Option<(i64, i64)>,
}

/// Where an assigned partition starts, decided by the sink.
#[derive(Debug, Clone)]
pub struct StartAt {
    pub tp: TopicPartition,
    pub offset: i64,
    pub epoch: u64,
}

/// What the consumer thread tells the sink task.
#[derive(Debug)]
pub enum ConsumerEvent {
    Records(Vec<Tagged>),
    /// Answer with where each partition starts; the thread waits for the answer.
    Assigned {
        partitions: Vec<Assigned>,
        reply: std_mpsc::SyncSender<Vec<StartAt>>,
    },
    /// Land what is buffered for these partitions, then answer; the thread waits (bounded).
    /// `lost`: the group already gave them away (session timeout), landing is pointless.
    Revoked {
        partitions: Vec<TopicPartition>,
        lost: bool,
        reply: std_mpsc::SyncSender<()>,
    },
    /// The consumer cannot go on (fatal librdkafka error).
    Fatal(String),
}

/// What the sink task tells the consumer thread.
#[derive(Debug)]
pub enum ConsumerCommand {
    Pause(Vec<TopicPartition>),
    Resume(Vec<TopicPartition>),
    /// Fetch from `offset`; records fetched before carry an older epoch.
    Seek {
        tp: TopicPartition,
        offset: i64,
        epoch: u64,
    },
    /// Commit the recovery hint to the group (lag tooling reads it too).
    CommitHint {
        tp: TopicPartition,
        offset: i64,
        metadata: String,
    },
    /// Stop handing out records (shutdown has begun); rebalances are still served.
    StopFetching,
    /// Leave the group and end the thread.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(KafkaError),
    #[error(
        "cannot reach Kafka at {bootstrap}: {source} (is the broker up and the address right?)"
    )]
    Unreachable {
        bootstrap: String,
        source: KafkaError,
    },
    #[error("topic `{0}` does not exist on the cluster")]
    NoSuchTopic(String),
    #[error("cannot subscribe: {0}")]
    Subscribe(KafkaError),
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub kafka: KafkaConfig,
    pub topics: TopicSelection,
    pub client_id: String,
    /// How long the thread waits for the sink to decide where new partitions start.
    pub assign_timeout: Duration,
    /// How long the thread waits for the sink to land revoked partitions.
    pub revoke_timeout: Duration,
    /// Records per channel message.
    pub batch_records: usize,
}

/// The handle the sink task keeps.
pub struct ConsumerHandle {
    pub commands: std_mpsc::Sender<ConsumerCommand>,
    pub thread: JoinHandle<()>,
}

struct Shared {
    /// Current epoch per assigned partition.
    epochs: HashMap<(String, i32), u64>,
    /// Seeks librdkafka refused so far, retried every loop. Until one succeeds, the partition's
    /// records are dropped: they come from the old position, and taking them would leave a gap
    /// that the next batch's range would claim to cover.
    pending_seeks: HashMap<(String, i32), PendingSeek>,
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct PendingSeek {
    offset: i64,
    refusals: u32,
}

struct Context {
    events: mpsc::Sender<ConsumerEvent>,
    shared: Mutex<Shared>,
    assign_timeout: Duration,
    revoke_timeout: Duration,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka retries transport errors itself; they are worth a warning, not a stop.
        warn!(%error, reason, "kafka client error");
    }
}

fn tps_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let started = Instant::now();
                let decided = self.decide_starts(consumer, tpl);
                let mut shared = self.shared.lock().expect("not poisoned");
                for s in &decided {
                    // An offset the sink chose; the store, not the group, is the truth.
                    let _ = tpl.set_partition_offset(
                        &s.tp.topic,
                        s.tp.partition,
                        Offset::Offset(s.offset),
                    );
                    let key = (s.tp.topic.to_string(), s.tp.partition);
                    shared.pending_seeks.remove(&key);
                    shared.epochs.insert(key, s.epoch);
                }
                drop(shared);
                let undecided: Vec<TopicPartition> = tps_of(tpl)
                    .into_iter()
                    .filter(|tp| !decided.iter().any(|d| &d.tp == tp))
                    .collect();
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = r {
                    warn!(error = %e, "assign failed");
                }
                if !undecided.is_empty() {
                    // The sink could not say where these start: keep them paused so nothing is
                    // fetched from a guessed position.
                    let mut p = TopicPartitionList::new();
                    for tp in &undecided {
                        p.add_partition(&tp.topic, tp.partition);
                    }
                    let _ = consumer.pause(&p);
                    let _ = self.events.blocking_send(ConsumerEvent::Fatal(format!(
                        "no start position decided for {} partition(s) within {:?}",
                        undecided.len(),
                        self.assign_timeout
                    )));
                }
                info!(
                    partitions = tpl.count(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "partitions assigned"
                );
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let tps = tps_of(tpl);
                let closing = self.shared.lock().expect("not poisoned").closing;
                let lost = consumer.assignment_lost();
                let (reply, answered) = std_mpsc::sync_channel(1);
                let sent = self
                    .events
                    .blocking_send(ConsumerEvent::Revoked {
                        partitions: tps.clone(),
                        lost,
                        reply,
                    })
                    .is_ok();
                if sent && answered.recv_timeout(self.revoke_timeout).is_err() && !closing {
                    warn!(
                        partitions = tps.len(),
                        timeout_ms = self.revoke_timeout.as_millis() as u64,
                        "revoked partitions not landed in time; the new owner re-reads them"
                    );
                }
                {
                    let mut shared = self.shared.lock().expect("not poisoned");
                    for tp in &tps {
                        let key = (tp.topic.to_string(), tp.partition);
                        shared.epochs.remove(&key);
                        shared.pending_seeks.remove(&key);
                    }
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    warn!(error = %e, "unassign failed");
                }
                info!(partitions = tps.len(), lost, "partitions revoked");
            }
            other => warn!(error = ?other, "rebalance error"),
        }
    }
}

impl Context {
    /// Ask the sink where each new partition starts (it reads the object store).
    fn decide_starts(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Vec<StartAt> {
        let timeout = Duration::from_secs(10);
        let committed = consumer.committed_offsets(tpl.clone(), timeout).ok();
        let partitions: Vec<Assigned> = tps_of(tpl)
            .into_iter()
            .map(|tp| {
                let committed = committed.as_ref().and_then(|c| {
                    c.find_partition(&tp.topic, tp.partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some((o, e.metadata().to_string())),
                            _ => None,
                        })
                });
                let watermarks = consumer
                    .fetch_watermarks(&tp.topic, tp.partition, timeout)
                    .ok();
                Assigned {
                    tp,
                    committed,
                    watermarks,
                }
            })
            .collect();
        let (reply, answer) = std_mpsc::sync_channel(1);
        if self
            .events
            .blocking_send(ConsumerEvent::Assigned { partitions, reply })
            .is_err()
        {
            return Vec::new();
        }
        answer.recv_timeout(self.assign_timeout).unwrap_or_default()
    }
}

fn to_record(m: &rdkafka::message::BorrowedMessage<'_>, topic: &Arc<str>) -> KafkaRecord {
    KafkaRecord {
        topic: topic.clone(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(bytes::Bytes::copy_from_slice),
        value: m.payload().map(bytes::Bytes::copy_from_slice),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(bytes::Bytes::copy_from_slice),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn client_config(s: &ConsumerSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.kafka.bootstrap_servers)
        .set("group.id", &s.kafka.group_id)
        .set("client.id", &s.client_id)
        // Records of aborted transactions must never land (librdkafka's default, said outright).
        .set("isolation.level", "read_committed")
        // Offsets are decided by the object store and committed by Landfall as hints.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", s.kafka.session_timeout_ms.to_string())
        // Bound what librdkafka prefetches; the sink's byte budget covers the rest.
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in &s.kafka.options {
        c.set(k, v);
    }
    c
}

/// Check the broker answers and named topics exist: a clear error at start beats a silent wait.
pub fn preflight(s: &ConsumerSettings) -> Result<(), KafkaSinkError> {
    let mut c = client_config(s);
    c.set("group.id", format!("{}-preflight", s.kafka.group_id));
    let consumer: BaseConsumer = c.create().map_err(KafkaSinkError::Create)?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| KafkaSinkError::Unreachable {
            bootstrap: s.kafka.bootstrap_servers.clone(),
            source,
        })?;
    if let TopicSelection::Names(names) = &s.topics {
        for n in names {
            let found = md
                .topics()
                .iter()
                .any(|t| t.name() == n && t.error().is_none() && !t.partitions().is_empty());
            if !found {
                return Err(KafkaSinkError::NoSuchTopic(n.clone()));
            }
        }
    }
    Ok(())
}

/// (low, high) watermark per (topic, partition).
pub type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// Low and high watermark of every partition of `topics` (for `landfall verify`).
pub fn watermarks(kafka: &KafkaConfig, topics: &[String]) -> Result<Watermarks, KafkaSinkError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    for (k, v) in &kafka.options {
        c.set(k, v);
    }
    let consumer: BaseConsumer = c.create().map_err(KafkaSinkError::Create)?;
    let timeout = Duration::from_secs(10);
    let mut out = BTreeMap::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), timeout)
            .map_err(|source| KafkaSinkError::Unreachable {
                bootstrap: kafka.bootstrap_servers.clone(),
                source,
            })?;
        for mt in md.topics() {
            for p in mt.partitions() {
                let w = consumer
                    .fetch_watermarks(t, p.id(), timeout)
                    .map_err(|source| KafkaSinkError::Unreachable {
                        bootstrap: kafka.bootstrap_servers.clone(),
                        source,
                    })?;
                out.insert((t.clone(), p.id()), w);
            }
        }
    }
    Ok(out)
}

/// Start the consumer thread.
pub fn spawn(
    settings: ConsumerSettings,
    events: mpsc::Sender<ConsumerEvent>,
) -> Result<ConsumerHandle, KafkaSinkError> {
    let context = Context {
        events: events.clone(),
        shared: Mutex::new(Shared {
            epochs: HashMap::new(),
            pending_seeks: HashMap::new(),
            closing: false,
        }),
        assign_timeout: settings.assign_timeout,
        revoke_timeout: settings.revoke_timeout,
    };
    let consumer: BaseConsumer<Context> = client_config(&settings)
        .create_with_context(context)
        .map_err(KafkaSinkError::Create)?;
    match &settings.topics {
        TopicSelection::Names(n) => {
            let names: Vec<&str> = n.iter().map(String::as_str).collect();
            consumer.subscribe(&names)
        }
        TopicSelection::Regex(re) => consumer.subscribe(&[re.as_str()]),
    }
    .map_err(KafkaSinkError::Subscribe)?;
    let (commands, command_rx) = std_mpsc::channel();
    let batch_records = settings.batch_records.max(1);
    let thread = std::thread::Builder::new()
        .name(format!("landfall-consumer-{}", settings.kafka.group_id))
        .spawn(move || poll_loop(consumer, events, command_rx, batch_records))
        .expect("spawn consumer thread");
    Ok(ConsumerHandle { commands, thread })
}

fn tpl_of(tps: &[TopicPartition]) -> TopicPartitionList {
    let mut l = TopicPartitionList::new();
    for tp in tps {
        l.add_partition(&tp.topic, tp.partition);
    }
    l
}

/// Perform the seeks the sink asked for; a refused one stays pending and is tried again.
fn retry_seeks(consumer: &BaseConsumer<Context>) {
    let pending: Vec<((String, i32), PendingSeek)> = {
        let shared = consumer.context().shared.lock().expect("not poisoned");
        if shared.pending_seeks.is_empty() {
            return;
        }
        shared
            .pending_seeks
            .iter()
            .map(|(k, p)| (k.clone(), *p))
            .collect()
    };
    for (key, seek) in pending {
        let r = consumer.seek(
            &key.0,
            key.1,
            Offset::Offset(seek.offset),
            Duration::from_secs(1),
        );
        let mut shared = consumer.context().shared.lock().expect("not poisoned");
        // Only if it is still the seek we made (no newer seek or reassignment in between).
        let Some(current) = shared.pending_seeks.get_mut(&key).filter(|p| **p == seek) else {
            continue;
        };
        match r {
            Ok(()) => {
                shared.pending_seeks.remove(&key);
            }
            Err(e) => {
                current.refusals += 1;
                // Tried every loop: say it once, then only at debug level.
                if current.refusals == 1 {
                    warn!(topic = key.0, partition = key.1, offset = seek.offset, error = %e,
                        "seek refused; the partition's records are held back until it succeeds");
                } else {
                    debug!(topic = key.0, partition = key.1, offset = seek.offset, error = %e, refusals = current.refusals, "seek refused again");
                }
            }
        }
    }
}

fn poll_loop(
    consumer: BaseConsumer<Context>,
    events: mpsc::Sender<ConsumerEvent>,
    commands: std_mpsc::Receiver<ConsumerCommand>,
    batch_records: usize,
) {
    let mut held: VecDeque<Vec<Tagged>> = VecDeque::new();
    let mut sink_paused: HashSet<TopicPartition> = HashSet::new();
    let mut backpressured = false;
    let mut fetching = true;
    let mut topics: HashMap<String, Arc<str>> = HashMap::new();
    'outer: loop {
        loop {
            match commands.try_recv() {
                Ok(ConsumerCommand::Pause(tps)) => {
                    let _ = consumer.pause(&tpl_of(&tps));
                    sink_paused.extend(tps);
                }
                Ok(ConsumerCommand::Resume(tps)) => {
                    for tp in &tps {
                        sink_paused.remove(tp);
                    }
                    if !backpressured && fetching {
                        let _ = consumer.resume(&tpl_of(&tps));
                    }
                }
                Ok(ConsumerCommand::Seek { tp, offset, epoch }) => {
                    let key = (tp.topic.to_string(), tp.partition);
                    let mut shared = consumer.context().shared.lock().expect("not poisoned");
                    // A seek for an earlier assignment of this partition is stale.
                    if shared.epochs.get(&key).is_some_and(|&e| e < epoch) {
                        shared.epochs.insert(key.clone(), epoch);
                        shared.pending_seeks.insert(
                            key,
                            PendingSeek {
                                offset,
                                refusals: 0,
                            },
                        );
                        drop(shared);
                        held.iter_mut().for_each(|b| {
                            b.retain(|(r, _)| !(r.topic == tp.topic && r.partition == tp.partition))
                        });
                    }
                }
                Ok(ConsumerCommand::CommitHint {
                    tp,
                    offset,
                    metadata,
                }) => {
                    let mut l = TopicPartitionList::new();
                    let mut e = l.add_partition(&tp.topic, tp.partition);
                    let _ = e.set_offset(Offset::Offset(offset));
                    e.set_metadata(metadata);
                    // Async: the hint is for lag tooling and faster recovery, never for truth.
                    if let Err(err) = consumer.commit(&l, CommitMode::Async) {
                        debug!(%tp, offset, error = %err, "offset hint not committed");
                    }
                }
                Ok(ConsumerCommand::StopFetching) => {
                    fetching = false;
                    held.clear();
                    if let Ok(a) = consumer.assignment() {
                        let _ = consumer.pause(&a);
                    }
                }
                Ok(ConsumerCommand::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    break 'outer
                }
                Err(std_mpsc::TryRecvError::Empty) => break,
            }
        }

        retry_seeks(&consumer);

        while let Some(batch) = held.pop_front() {
            match events.try_send(ConsumerEvent::Records(batch)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ConsumerEvent::Records(b))) => {
                    held.push_front(b);
                    break;
                }
                Err(_) => break 'outer,
            }
        }
        if held.is_empty() && backpressured {
            backpressured = false;
            if fetching {
                if let Ok(a) = consumer.assignment() {
                    let resume: Vec<TopicPartition> = tps_of(&a)
                        .into_iter()
                        .filter(|tp| !sink_paused.contains(tp))
                        .collect();
                    let _ = consumer.resume(&tpl_of(&resume));
                }
            }
        }

        // Poll even when paused or backpressured: it serves rebalances and keeps membership.
        let mut batch = Vec::new();
        let mut timeout = Duration::from_millis(if held.is_empty() { 100 } else { 20 });
        while batch.len() < batch_records {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    let topic = topics
                        .entry(m.topic().to_string())
                        .or_insert_with(|| Arc::from(m.topic()))
                        .clone();
                    let epoch = {
                        let shared = consumer.context().shared.lock().expect("not poisoned");
                        let key = (m.topic().to_string(), m.partition());
                        if shared.pending_seeks.contains_key(&key) {
                            None // fetched from before a seek that has not happened yet
                        } else {
                            shared.epochs.get(&key).copied()
                        }
                    };
                    // Records of partitions no longer assigned are dropped; their new owner reads them.
                    if let (Some(epoch), true) = (epoch, fetching) {
                        batch.push((to_record(&m, &topic), epoch));
                    }
                }
                Some(Err(e)) => {
                    if let KafkaError::MessageConsumption(code) = &e {
                        debug!(error = %code, "consume error");
                    } else {
                        warn!(error = %e, "poll error");
                    }
                    if let Some((code, reason)) = consumer.client().fatal_error() {
                        let _ = events
                            .blocking_send(ConsumerEvent::Fatal(format!("{code:?}: {reason}")));
                        break 'outer;
                    }
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
        if batch.is_empty() {
            continue;
        }
        if !held.is_empty() {
            held.push_back(batch);
            continue;
        }
        match events.try_send(ConsumerEvent::Records(batch)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ConsumerEvent::Records(b))) => {
                held.push_back(b);
                if !backpressured {
                    backpressured = true;
                    if let Ok(a) = consumer.assignment() {
                        let _ = consumer.pause(&a);
                    }
                }
            }
            Err(_) => break 'outer,
        }
    }
    consumer
        .context()
        .shared
        .lock()
        .expect("not poisoned")
        .closing = true;
    // Leaving the group runs a final revoke through the callback; the sink answers it at once.
    consumer.unsubscribe();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false)
    {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    drop(consumer);
}
