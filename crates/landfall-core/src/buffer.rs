//! Partition buffer (arrow 2 -> 3 of the data flow): one per assigned topic-partition.
//!
//! Records queue as raw bytes until a chunk is full, then the chunk is decoded to Arrow and written
//! straight into an open Parquet writer per time partition. The buffer therefore holds compressed
//! Parquet pages, not records, and the size that triggers a flush is the size of the compressed file
//! being written (`max_file_bytes` means bytes on the store, not bytes in memory or record counts).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Encoding, PageType};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::decode::{conform, RecordDecoder, Rejected};
use crate::flush::{BufferStats, FlushReason};
use crate::keys::{quarter_hour_floor_us, time_partition};
use crate::manifest::{Gap, OffsetRange};
use crate::record::{KafkaRecord, TopicPartition};
use crate::schema::fingerprint;

/// Everything a buffer needs from its sink's config; shared by all buffers of the sink.
#[derive(Debug, Clone)]
pub struct BufferFormat {
    pub decoder: RecordDecoder,
    pub props: Arc<WriterProperties>,
    pub timezone: chrono_tz::Tz,
    pub chunk_records: usize,
    /// `on_decode_error = "fail"`: a bad record is an error instead of a dead letter.
    pub fail_on_bad_record: bool,
    /// Learned correction of the file-size estimate, shared by the sink's partitions.
    pub size_model: Arc<SizeModel>,
    /// Columns whose dictionary did not pay in recent files, shared by the sink's partitions.
    pub dictionary: Arc<DictionaryModel>,
    /// Keep each row's original record until its batch lands (`[windows] late_records =
    /// "dead_letter"`): a row whose window turns out closed when the batch lands becomes a
    /// dead letter, which needs the record's bytes, not the decoded row. Off by default, so
    /// other sinks hold only the Parquet pages.
    pub hold_records: bool,
}

impl BufferFormat {
    /// What a sink's config says about decoding and encoding; one per sink.
    pub fn from_config(cfg: &crate::config::SinkConfig) -> BufferFormat {
        BufferFormat {
            decoder: RecordDecoder::new(
                &cfg.format,
                &cfg.metadata_columns,
                cfg.partitioning.event_time_field.clone(),
            ),
            props: crate::parquet_props::writer_properties(&cfg.parquet),
            timezone: cfg.partitioning.timezone,
            chunk_records: cfg.runtime.chunk_records,
            fail_on_bad_record: cfg.errors.on_decode_error == crate::config::OnDecodeError::Fail,
            size_model: Default::default(),
            dictionary: Default::default(),
            hold_records: cfg.windows.enabled
                && cfg.windows.late_records == crate::config::LateRecords::DeadLetter,
        }
    }
}

/// Parquet's estimate of an open file counts the open data and dictionary pages of every column
/// at their uncompressed size, so it overstates the finished file by a roughly fixed amount
/// (megabytes for a wide schema): negligible for 128 MiB files, 15-20% for 8 MiB ones. Each
/// finished file reports by how much the estimate overstated it; later estimates subtract that.
#[derive(Debug, Default)]
pub struct SizeModel {
    overstatement: std::sync::atomic::AtomicU64,
}

impl SizeModel {
    fn learn(&self, estimated: u64, actual: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let observed = estimated.saturating_sub(actual);
        let old = self.overstatement.load(Relaxed);
        let new = if old == 0 {
            observed
        } else {
            (old + observed) / 2
        };
        self.overstatement.store(new, Relaxed);
    }

    fn correct(&self, written: u64, estimated: u64) -> u64 {
        estimated
            .saturating_sub(
                self.overstatement
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .max(written)
    }
}

/// Which columns to write without a dictionary, learned from finished files.
///
/// Parquet writers dictionary-encode every column while the dictionary stays under its page
/// limit (1 MiB). For a column of mostly distinct values (ids, sequence numbers, free text) that
/// is pure cost: every value is hashed and interned, the dictionary page holds the values anyway
/// and the indexes come on top — on small events the interning was a sixth of the sink's CPU.
/// A finished file tells which columns did not pay: their writer fell back to plain pages, or
/// their dictionary page is most of the column chunk. Later files write those columns plain.
/// Every [`DICTIONARY_PROBE_FILES`]th file is written with every dictionary on, so a column whose
/// values turn repetitive gets its dictionary back.
#[derive(Debug, Default)]
pub struct DictionaryModel {
    state: std::sync::Mutex<DictionaryState>,
}

#[derive(Debug, Default)]
struct DictionaryState {
    plain: std::collections::BTreeSet<Vec<String>>,
    files: u64,
}

/// How often a file is written with every dictionary on, to re-learn.
pub const DICTIONARY_PROBE_FILES: u64 = 16;
/// Column chunks smaller than this are not judged. A dictionary page of half the column chunk
/// or more holds mostly distinct values.
const DICTIONARY_JUDGED_BYTES: i64 = 16 << 10;

impl DictionaryModel {
    /// Writer properties for the next file: `base` with the learned columns plain.
    fn props(&self, base: &Arc<WriterProperties>) -> WriterProperties {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.files += 1;
        if state.plain.is_empty() || state.files.is_multiple_of(DICTIONARY_PROBE_FILES) {
            return (**base).clone();
        }
        let mut b = (**base).clone().into_builder();
        for path in &state.plain {
            b = b.set_column_dictionary_enabled(ColumnPath::new(path.clone()), false);
        }
        b.build()
    }

    /// Learn from a finished file: which of its dictionary-encoded columns did not pay. Only a
    /// file written with a column's dictionary on says anything about that column, and only a
    /// column chunk of [`DICTIONARY_JUDGED_BYTES`] or more (below, page headers decide the share).
    fn learn(&self, meta: &ParquetMetaData) {
        // Column -> (fell back, dictionary page bytes, column chunk bytes) over the row groups.
        let mut seen: BTreeMap<Vec<String>, (bool, i64, i64)> = BTreeMap::new();
        for col in meta.row_groups().iter().flat_map(|rg| rg.columns()) {
            let Some(dict_at) = col.dictionary_page_offset() else {
                continue;
            };
            let fell_back = col.page_encoding_stats().is_some_and(|stats| {
                stats.iter().any(|s| {
                    matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2)
                        && !matches!(
                            s.encoding,
                            Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY
                        )
                })
            });
            let e = seen.entry(col.column_path().parts().to_vec()).or_default();
            e.0 |= fell_back;
            e.1 += col.data_page_offset() - dict_at;
            e.2 += col.compressed_size();
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (path, (fell_back, dict, chunk)) in seen {
            if fell_back || (chunk >= DICTIONARY_JUDGED_BYTES && dict * 2 >= chunk) {
                state.plain.insert(path);
            } else if chunk >= DICTIONARY_JUDGED_BYTES {
                state.plain.remove(&path);
            }
        }
    }

    /// The columns currently written plain (dotted paths), for tests and diagnostics.
    pub fn plain_columns(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.plain.iter().map(|p| p.join(".")).collect()
    }
}

/// One finished Parquet file of a batch, not yet uploaded.
#[derive(Debug, Clone)]
pub struct EncodedFile {
    pub time_partition: String,
    /// Position of the file within its batch (keys must differ when one time partition rotates).
    pub seq: usize,
    pub bytes: Bytes,
    pub rows: u64,
    pub min_offset: i64,
    pub max_offset: i64,
    pub schema_fingerprint: String,
    pub sha256: String,
}

/// A row's original record, kept with its event time while its batch may still need it as a
/// dead letter ([`BufferFormat::hold_records`]).
#[derive(Debug, Clone)]
pub struct HeldRecord {
    pub event_time_us: i64,
    pub record: KafkaRecord,
}

/// A sealed batch: a contiguous run of one partition's offsets, encoded, ready to land.
#[derive(Debug, Clone)]
pub struct SealedBatch {
    pub tp: TopicPartition,
    /// Decided by the offset ledger, not by the records seen: a batch starts where the previous
    /// commit ends even when Kafka skipped offsets there.
    pub offsets: OffsetRange,
    /// Offsets inside `offsets` that were skipped (retention), set by the offset ledger when
    /// the batch is sealed; the manifest explains them.
    pub gaps: Vec<Gap>,
    /// Unique per batch and kept across its retries, so a retry after an unknown outcome
    /// recognises its own commit record (and data keys of two writers never collide).
    pub attempt_id: String,
    pub records: u64,
    pub files: Vec<EncodedFile>,
    pub rejected: Vec<Rejected>,
    /// The rows' original records by time partition, in offset order; empty unless
    /// [`BufferFormat::hold_records`].
    pub held: BTreeMap<String, Vec<HeldRecord>>,
    /// Min and max event time of the rows (microseconds).
    pub event_time_us: Option<(i64, i64)>,
    /// The newest Kafka timestamp among the batch's records (ms): once committed, how fresh the
    /// landed data is (`landfall_freshness_seconds`). `None` when the broker gave none.
    pub newest_timestamp_ms: Option<i64>,
    pub reason: FlushReason,
}

impl SealedBatch {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Bytes of the Parquet files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes.len() as u64).sum()
    }

    /// Bytes the batch holds in memory until it lands: its files, its rejected and held
    /// records, and their dead-letter lines (base64, 4/3 of the raw bytes) while that file
    /// uploads (any held record may become one).
    pub fn memory_bytes(&self) -> u64 {
        let rejected: u64 = self.rejected.iter().map(|r| r.record.size_bytes()).sum();
        let held: u64 = self
            .held
            .values()
            .flatten()
            .map(|h| h.record.size_bytes())
            .sum();
        let records = rejected + held;
        self.bytes() + records + records * 4 / 3
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    #[error("undecodable record at {topic}[{partition}] offset {offset}: {reason} (errors.on_decode_error = \"fail\")")]
    BadRecord {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("encoding Parquet for {tp}: {message}")]
    Parquet { tp: TopicPartition, message: String },
}

struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
    rows: u64,
    min_offset: i64,
    max_offset: i64,
}

impl OpenFile {
    /// Bytes the finished file would have if closed now (compressed pages written plus the
    /// writer's estimate for the row group in progress).
    fn estimated_bytes(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    fn corrected_bytes(&self, model: &SizeModel) -> u64 {
        model.correct(self.writer.bytes_written() as u64, self.estimated_bytes())
    }

    fn memory_bytes(&self) -> u64 {
        (self.writer.inner().capacity() + self.writer.memory_size()) as u64
    }
}

/// Raw bytes at which pending records are encoded as a chunk, whatever `chunk_records` says.
/// Arrow's string and binary arrays address their values with i32 offsets, so one array holds
/// at most 2 GiB: 8192 records of 300 KB would overflow it (a panic in the raw format). 256 MiB
/// keeps every array of a chunk far below that, even when a few values grow on the way (numbers
/// rewritten as JSON text), and bounds the memory one decode takes.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;

pub struct PartitionBuffer {
    tp: TopicPartition,
    pending: Vec<KafkaRecord>,
    pending_bytes: u64,
    /// Pending bytes at which a chunk is encoded whatever its record count.
    max_chunk_bytes: u64,
    open: BTreeMap<String, OpenFile>,
    done: Vec<EncodedFile>,
    rejected: Vec<Rejected>,
    /// Bytes of `rejected`: held until the batch lands, so they count against the budget.
    rejected_bytes: u64,
    /// Original records of the encoded rows ([`BufferFormat::hold_records`]), and their bytes
    /// (counted against the budget like `rejected`).
    held: BTreeMap<String, Vec<HeldRecord>>,
    held_bytes: u64,
    records: u64,
    opened_at_ms: Option<u64>,
    event_time_us: Option<(i64, i64)>,
    newest_timestamp_ms: Option<i64>,
    /// Compressed bytes per raw byte, learned from this partition's chunks; estimates the share
    /// of the file that the raw records still pending will add.
    ratio: f64,
    partition_names: HashMap<i64, String>,
    next_seq: usize,
}

impl PartitionBuffer {
    pub fn new(tp: TopicPartition) -> Self {
        PartitionBuffer {
            tp,
            pending: Vec::new(),
            pending_bytes: 0,
            max_chunk_bytes: MAX_CHUNK_BYTES,
            open: BTreeMap::new(),
            done: Vec::new(),
            rejected: Vec::new(),
            rejected_bytes: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            records: 0,
            opened_at_ms: None,
            event_time_us: None,
            newest_timestamp_ms: None,
            ratio: 0.5,
            partition_names: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Lower the byte bound of a chunk (tests; the default is [`MAX_CHUNK_BYTES`]).
    pub fn with_max_chunk_bytes(mut self, max_chunk_bytes: u64) -> Self {
        self.max_chunk_bytes = max_chunk_bytes.max(1);
        self
    }

    pub fn tp(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Add a record. Offsets must increase (the caller's ledger guarantees it). `now_ms` is a
    /// monotonic clock reading: the buffer's age is measured with it.
    pub fn push(&mut self, record: KafkaRecord, now_ms: u64) {
        if self.records == 0 {
            self.opened_at_ms = Some(now_ms);
        }
        self.records += 1;
        if let Some(ts) = record.timestamp_ms.filter(|&t| t >= 0) {
            self.newest_timestamp_ms = Some(self.newest_timestamp_ms.map_or(ts, |n| n.max(ts)));
        }
        self.pending_bytes += record.size_bytes();
        self.pending.push(record);
    }

    /// True when enough records, or enough bytes ([`MAX_CHUNK_BYTES`]), are pending to encode a
    /// chunk.
    pub fn chunk_full(&self, fmt: &BufferFormat) -> bool {
        self.pending.len() >= fmt.chunk_records || self.pending_bytes >= self.max_chunk_bytes
    }

    pub fn stats(&self, fmt: &BufferFormat) -> BufferStats {
        let pending_estimate = (self.pending_bytes as f64 * self.ratio) as u64;
        let largest = self
            .open
            .values()
            .map(|f| f.corrected_bytes(&fmt.size_model))
            .max()
            .unwrap_or(0);
        BufferStats {
            records: self.records,
            largest_file_bytes: largest + pending_estimate,
            opened_at_ms: self.opened_at_ms,
        }
    }

    /// Bytes held in memory, for the sink's budget.
    pub fn memory_bytes(&self) -> u64 {
        self.pending_bytes
            + self.rejected_bytes
            + self.held_bytes
            + self.open.values().map(OpenFile::memory_bytes).sum::<u64>()
            + self.done.iter().map(|f| f.bytes.len() as u64).sum::<u64>()
    }

    /// Decode the pending records and write them into the open files. CPU-bound.
    pub fn encode_pending(&mut self, fmt: &BufferFormat, now_us: i64) -> Result<(), BufferError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let raw_bytes = std::mem::take(&mut self.pending_bytes);
        if raw_bytes < self.max_chunk_bytes {
            return self.encode_chunk(fmt, &pending, raw_bytes, now_us);
        }
        // More bytes pending than one chunk may hold (a seal, or a caller that did not check
        // `chunk_full`): encode them in byte-bounded pieces.
        let sizes: Vec<u64> = pending.iter().map(KafkaRecord::size_bytes).collect();
        for range in byte_chunks(&sizes, self.max_chunk_bytes) {
            let bytes = sizes[range.clone()].iter().sum();
            self.encode_chunk(fmt, &pending[range], bytes, now_us)?;
        }
        Ok(())
    }

    fn encode_chunk(
        &mut self,
        fmt: &BufferFormat,
        chunk: &[KafkaRecord],
        raw_bytes: u64,
        now_us: i64,
    ) -> Result<(), BufferError> {
        let decoded = fmt.decoder.decode(chunk, now_us)?;
        if fmt.fail_on_bad_record {
            if let Some(bad) = decoded.rejected.first() {
                return Err(BufferError::BadRecord {
                    topic: bad.record.topic.to_string(),
                    partition: bad.record.partition,
                    offset: bad.record.offset,
                    reason: bad.reason.clone(),
                });
            }
        }
        self.rejected_bytes += decoded
            .rejected
            .iter()
            .map(|r| r.record.size_bytes())
            .sum::<u64>();
        self.rejected.extend(decoded.rejected);
        if decoded.batch.num_rows() == 0 {
            return Ok(());
        }
        let before: u64 = self.open.values().map(OpenFile::estimated_bytes).sum();
        let done_before: u64 = self.done.iter().map(|f| f.bytes.len() as u64).sum();

        // Group rows by time partition; one group (the common case) is written without a copy.
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (row, &t) in decoded.event_time_us.iter().enumerate() {
            let name = self
                .partition_names
                .entry(quarter_hour_floor_us(t))
                .or_insert_with(|| time_partition(t, fmt.timezone));
            match groups.get_mut(name.as_str()) {
                Some(rows) => rows.push(row as u32),
                None => {
                    groups.insert(name.clone(), vec![row as u32]);
                }
            }
            let (lo, hi) = self.event_time_us.get_or_insert((t, t));
            *lo = (*lo).min(t);
            *hi = (*hi).max(t);
        }
        if self.partition_names.len() > 1024 {
            self.partition_names.clear();
        }
        if fmt.hold_records {
            self.hold(
                &name_rows(&groups),
                chunk,
                &decoded.offsets,
                &decoded.event_time_us,
            );
        }
        let single = groups.len() == 1;
        for (name, rows) in groups {
            let (batch, offsets) = if single {
                (decoded.batch.clone(), decoded.offsets.clone())
            } else {
                let idx = UInt32Array::from(rows.clone());
                let b = take_record_batch(&decoded.batch, &idx).map_err(|e| self.parquet_err(e))?;
                (
                    b,
                    rows.iter().map(|&r| decoded.offsets[r as usize]).collect(),
                )
            };
            self.write_rows(fmt, name, batch, &offsets)?;
        }

        let after: u64 = self
            .open
            .values()
            .map(OpenFile::estimated_bytes)
            .sum::<u64>()
            + self.done.iter().map(|f| f.bytes.len() as u64).sum::<u64>()
            - done_before;
        if raw_bytes > 0 && after > before {
            let observed = (after - before) as f64 / raw_bytes as f64;
            self.ratio = 0.7 * self.ratio + 0.3 * observed.clamp(0.001, 4.0);
        }
        Ok(())
    }

    /// Keep the original record of every row of `groups` (time partition -> row indexes).
    /// Rows are found by offset: the chunk is in offset order.
    fn hold(
        &mut self,
        groups: &[(&str, &[u32])],
        chunk: &[KafkaRecord],
        offsets: &[i64],
        event_time_us: &[i64],
    ) {
        for (name, rows) in groups {
            let held = self.held.entry(name.to_string()).or_default();
            for &row in rows.iter() {
                let offset = offsets[row as usize];
                let Ok(i) = chunk.binary_search_by_key(&offset, |r| r.offset) else {
                    continue; // every row comes from a record of the chunk
                };
                self.held_bytes += chunk[i].size_bytes();
                held.push(HeldRecord {
                    event_time_us: event_time_us[row as usize],
                    record: chunk[i].clone(),
                });
            }
        }
    }

    fn parquet_err(&self, e: impl std::fmt::Display) -> BufferError {
        BufferError::Parquet {
            tp: self.tp.clone(),
            message: e.to_string(),
        }
    }

    fn write_rows(
        &mut self,
        fmt: &BufferFormat,
        name: String,
        batch: RecordBatch,
        offsets: &[i64],
    ) -> Result<(), BufferError> {
        // A batch whose schema the open file cannot take (an inferred schema gained a field or
        // changed a type) closes that file; the batch starts the next one of the same partition.
        let batch = match self.open.get(&name) {
            Some(f) => match conform(&batch, &f.schema) {
                Some(b) => b,
                None => {
                    let f = self.open.remove(&name).expect("present");
                    let file = self.finish_file(fmt, name.clone(), f)?;
                    self.done.push(file);
                    batch
                }
            },
            None => batch,
        };
        if !self.open.contains_key(&name) {
            let schema = batch.schema();
            let props = fmt.dictionary.props(&fmt.props);
            let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                .map_err(|e| self.parquet_err(e))?;
            self.open.insert(
                name.clone(),
                OpenFile {
                    writer,
                    schema,
                    rows: 0,
                    min_offset: i64::MAX,
                    max_offset: i64::MIN,
                },
            );
        }
        let tp = self.tp.clone();
        let f = self.open.get_mut(&name).expect("inserted above");
        f.writer.write(&batch).map_err(|e| BufferError::Parquet {
            tp,
            message: e.to_string(),
        })?;
        f.rows += batch.num_rows() as u64;
        f.min_offset = f.min_offset.min(*offsets.iter().min().expect("non-empty"));
        f.max_offset = f.max_offset.max(*offsets.iter().max().expect("non-empty"));
        Ok(())
    }

    fn finish_file(
        &mut self,
        fmt: &BufferFormat,
        name: String,
        mut f: OpenFile,
    ) -> Result<EncodedFile, BufferError> {
        let estimated = f.estimated_bytes();
        // `finish` writes the footer and flushes it into the Vec, which then holds the file.
        let meta = f.writer.finish().map_err(|e| self.parquet_err(e))?;
        fmt.dictionary.learn(&meta);
        let bytes = std::mem::take(f.writer.inner_mut());
        fmt.size_model.learn(estimated, bytes.len() as u64);
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(EncodedFile {
            time_partition: name,
            seq,
            sha256: crate::manifest::sha256_hex(&bytes),
            bytes: Bytes::from(bytes),
            rows: f.rows,
            min_offset: f.min_offset,
            max_offset: f.max_offset,
            schema_fingerprint: fingerprint(&f.schema),
        })
    }

    /// Seal everything buffered into a batch covering `offsets` (the ledger's range) and reset.
    /// `None` if the buffer is empty.
    pub fn seal(
        &mut self,
        fmt: &BufferFormat,
        reason: FlushReason,
        offsets: OffsetRange,
        attempt_id: &str,
        now_us: i64,
    ) -> Result<Option<SealedBatch>, BufferError> {
        if self.records == 0 {
            return Ok(None);
        }
        self.encode_pending(fmt, now_us)?;
        let mut files = std::mem::take(&mut self.done);
        for (name, f) in std::mem::take(&mut self.open) {
            files.push(self.finish_file(fmt, name, f)?);
        }
        let batch = SealedBatch {
            tp: self.tp.clone(),
            offsets,
            gaps: Vec::new(),
            attempt_id: attempt_id.to_string(),
            records: self.records,
            files,
            rejected: std::mem::take(&mut self.rejected),
            held: std::mem::take(&mut self.held),
            event_time_us: self.event_time_us.take(),
            newest_timestamp_ms: self.newest_timestamp_ms.take(),
            reason,
        };
        self.reset();
        Ok(Some(batch))
    }

    /// Drop everything buffered (revoked partition, or a lost commit race: the data will be
    /// read again from the offset the store says comes next).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.open.clear();
        self.done.clear();
        self.rejected.clear();
        self.held.clear();
        self.event_time_us = None;
        self.newest_timestamp_ms = None;
        self.reset();
    }

    fn reset(&mut self) {
        self.records = 0;
        self.rejected_bytes = 0;
        self.held_bytes = 0;
        self.opened_at_ms = None;
        self.next_seq = 0;
    }
}

fn name_rows(groups: &BTreeMap<String, Vec<u32>>) -> Vec<(&str, &[u32])> {
    groups
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_slice()))
        .collect()
}

/// Split pending records (their sizes) into chunks: a chunk closes once its bytes reach
/// `max_bytes`, so each holds at most `max_bytes` plus one record.
fn byte_chunks(sizes: &[u64], max_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        bytes += size;
        if bytes >= max_bytes {
            out.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, FormatConfig, MetadataColumn, ParquetConfig, Statistics};
    use crate::parquet_props::writer_properties;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn fmt(chunk: usize, fail: bool) -> BufferFormat {
        BufferFormat {
            decoder: RecordDecoder::new(
                &FormatConfig::JsonInferred,
                &[MetadataColumn::Offset],
                None,
            ),
            props: writer_properties(&ParquetConfig {
                compression: Compression::Zstd(3),
                row_group_rows: 1000,
                data_page_bytes: 64 * 1024,
                dictionary: true,
                statistics: Statistics::Page,
            }),
            timezone: chrono_tz::UTC,
            chunk_records: chunk,
            fail_on_bad_record: fail,
            size_model: Default::default(),
            dictionary: Default::default(),
            hold_records: false,
        }
    }

    const HOUR_MS: i64 = 3_600_000;

    fn rec(offset: i64, ts_ms: i64, value: String) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp_ms: Some(ts_ms),
            key: None,
            value: Some(Bytes::from(value)),
            headers: vec![],
        }
    }

    fn read_offsets(bytes: &Bytes) -> Vec<i64> {
        let r = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap();
        r.flat_map(|b| {
            let b = b.unwrap();
            b.column_by_name("_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
    }

    /// Which columns of a Parquet file carry a dictionary page.
    fn dictionary_columns(bytes: &Bytes) -> Vec<String> {
        let r = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let mut cols: Vec<String> = r.metadata().row_groups()[0]
            .columns()
            .iter()
            .filter(|c| c.dictionary_page_offset().is_some())
            .map(|c| c.column_path().string())
            .collect();
        cols.sort();
        cols
    }

    #[test]
    fn columns_whose_dictionary_does_not_pay_are_written_plain_and_probed_again() {
        let f = fmt(1000, false);
        const ROWS: i64 = 10_000;
        let batch = |b: &mut PartitionBuffer, first: i64| {
            for o in first..first + ROWS {
                // `id` distinct per record, `kind` one of three.
                let v = format!(
                    r#"{{"id":"{:016x}","kind":"k{}"}}"#,
                    (o as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    o % 3
                );
                b.push(rec(o, 1_763_719_200_000, v), 1);
            }
            b.seal(
                &f,
                FlushReason::Age,
                OffsetRange::new(first, first + ROWS - 1),
                "a",
                0,
            )
            .unwrap()
            .unwrap()
        };
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        // First file: every column starts with a dictionary; `id` (distinct values) does not
        // pay, `kind` does.
        let first = batch(&mut b, 0);
        let with_dict = dictionary_columns(&first.files[0].bytes);
        assert!(with_dict.contains(&"id".into()) && with_dict.contains(&"kind".into()));
        let plain = f.dictionary.plain_columns();
        assert!(plain.contains(&"id".into()), "{plain:?}");
        assert!(!plain.contains(&"kind".into()), "{plain:?}");
        // Later files write `id` plain, `kind` with its dictionary; rows read back the same.
        let mut files = 1;
        while files % DICTIONARY_PROBE_FILES != DICTIONARY_PROBE_FILES - 1 {
            let first = files as i64 * ROWS;
            let next = batch(&mut b, first);
            let with_dict = dictionary_columns(&next.files[0].bytes);
            assert!(!with_dict.contains(&"id".into()), "{with_dict:?}");
            assert!(with_dict.contains(&"kind".into()), "{with_dict:?}");
            assert_eq!(
                read_offsets(&next.files[0].bytes),
                (first..first + ROWS).collect::<Vec<_>>()
            );
            files += 1;
        }
        // The probe: every dictionary on again, and what it learns holds.
        let probe = batch(&mut b, files as i64 * ROWS);
        assert_eq!(
            dictionary_columns(&probe.files[0].bytes),
            ["_offset", "id", "kind"]
        );
        assert_eq!(f.dictionary.plain_columns(), plain);
    }

    #[test]
    fn seals_files_per_time_partition_with_every_offset_once() {
        let f = fmt(4, false);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        for o in 0..10 {
            // Two hours interleaved, plus one bad record.
            let v = if o == 7 {
                "oops".to_string()
            } else {
                format!(r#"{{"n":{o}}}"#)
            };
            b.push(rec(o, 1_763_719_200_000 + (o % 2) * HOUR_MS, v), 1);
            if b.chunk_full(&f) {
                b.encode_pending(&f, 0).unwrap();
            }
        }
        let sealed = b
            .seal(&f, FlushReason::Age, OffsetRange::new(0, 9), "a", 0)
            .unwrap()
            .unwrap();
        assert_eq!(sealed.offsets, OffsetRange::new(0, 9));
        assert_eq!(sealed.records, 10);
        assert_eq!(sealed.files.len(), 2);
        assert_eq!(sealed.rows(), 9);
        assert_eq!(sealed.rejected.len(), 1);
        assert_eq!(sealed.rejected[0].record.offset, 7);
        let mut all: Vec<i64> = sealed
            .files
            .iter()
            .flat_map(|f| read_offsets(&f.bytes))
            .collect();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5, 6, 8, 9]);
        assert_eq!(sealed.files[0].time_partition, "dt=2025-11-21/hour=10");
        assert_eq!(read_offsets(&sealed.files[1].bytes), vec![1, 3, 5, 9]);
        assert!(b.is_empty());
        assert!(b
            .seal(&f, FlushReason::Age, OffsetRange::new(10, 10), "a", 0)
            .unwrap()
            .is_none());
    }

    // Raw chunks of 8192 records of 300 KB each (2.4 GB) overflowed Arrow's i32 offsets.
    #[test]
    fn chunks_are_bounded_by_bytes_whatever_the_record_count() {
        let mut f = fmt(1_000_000, false);
        f.decoder = RecordDecoder::new(&FormatConfig::Raw, &[MetadataColumn::Offset], None);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0)).with_max_chunk_bytes(1000);
        let value = "x".repeat(300); // 364 bytes with the record's overhead
        b.push(rec(0, 0, value.clone()), 0);
        b.push(rec(1, 0, value.clone()), 0);
        assert!(!b.chunk_full(&f));
        b.push(rec(2, 0, value.clone()), 0);
        assert!(
            b.chunk_full(&f),
            "1092 pending bytes reach the 1000-byte bound"
        );
        // More pending than the bound (a seal, or a caller that did not ask): encoded in
        // byte-bounded pieces, every offset once.
        for o in 3..20 {
            b.push(rec(o, 0, value.clone()), 0);
        }
        let s = b
            .seal(&f, FlushReason::Age, OffsetRange::new(0, 19), "a", 0)
            .unwrap()
            .unwrap();
        assert_eq!(read_offsets(&s.files[0].bytes), (0..20).collect::<Vec<_>>());
        let sizes: Vec<u64> = (0..20).map(|_| 364).collect();
        assert_eq!(
            byte_chunks(&sizes, 1000),
            vec![0..3, 3..6, 6..9, 9..12, 12..15, 15..18, 18..20]
        );
        assert_eq!(byte_chunks(&[5000, 1, 1], 1000), vec![0..1, 1..3]);
        assert_eq!(byte_chunks(&[], 1000), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn dead_lettered_records_count_against_the_budget() {
        let f = fmt(10, false);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        for o in 0..10 {
            // Not JSON: every one of them is dead-lettered, and kept until the batch lands.
            b.push(rec(o, 0, "x".repeat(10_000)), 0);
        }
        b.encode_pending(&f, 0).unwrap();
        assert!(
            b.memory_bytes() >= 100_000,
            "10 x 10 kB rejected records held, counted {}",
            b.memory_bytes()
        );
        let s = b
            .seal(&f, FlushReason::Age, OffsetRange::new(0, 9), "a", 0)
            .unwrap()
            .unwrap();
        // Held as records, and again as base64 JSON lines while the dead-letter file uploads.
        assert!(s.memory_bytes() >= 100_000 * 7 / 3, "{}", s.memory_bytes());
    }

    #[test]
    fn fail_mode_names_the_record() {
        let f = fmt(100, true);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        b.push(rec(41, 0, "{}".into()), 0);
        b.push(rec(42, 0, "{".into()), 0);
        let err = b
            .seal(&f, FlushReason::Age, OffsetRange::new(41, 42), "a", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t[0] offset 42"), "{err}");
    }

    #[test]
    fn schema_change_rotates_within_the_batch() {
        let f = fmt(1, false);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        b.push(rec(0, 0, r#"{"a":1}"#.into()), 0);
        b.encode_pending(&f, 0).unwrap();
        b.push(rec(1, 0, r#"{"b":"x"}"#.into()), 0);
        b.encode_pending(&f, 0).unwrap();
        b.push(rec(2, 0, r#"{"b":"y"}"#.into()), 0);
        let s = b
            .seal(&f, FlushReason::Age, OffsetRange::new(0, 2), "a", 0)
            .unwrap()
            .unwrap();
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.files[0].rows, 1);
        assert_eq!(s.files[1].rows, 2);
        assert_ne!(s.files[0].seq, s.files[1].seq);
        assert_ne!(s.files[0].schema_fingerprint, s.files[1].schema_fingerprint);
    }

    #[test]
    fn size_estimate_tracks_the_compressed_file() {
        let f = fmt(1000, false);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
        let mut o = 0;
        // Random-ish payload so compression does not make everything tiny.
        let mut x: u64 = 12345;
        for _ in 0..20 {
            for _ in 0..1000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b.push(rec(o, 0, format!(r#"{{"n":{o},"r":"{:x}"}}"#, x)), 0);
                o += 1;
            }
            b.encode_pending(&f, 0).unwrap();
        }
        let estimate = b.stats(&f).largest_file_bytes as f64;
        let s = b
            .seal(&f, FlushReason::Bytes, OffsetRange::new(0, o - 1), "a", 0)
            .unwrap()
            .unwrap();
        let actual = s.bytes() as f64;
        assert!(
            (estimate - actual).abs() / actual < 0.10,
            "estimate {estimate} actual {actual}"
        );
        let ids: Int64Array = read_offsets(&s.files[0].bytes).into();
        assert_eq!(ids.len(), 20_000);
    }
}
