//! Parquet writer settings (arrow 3) from the sink config.

use std::sync::Arc;

use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use crate::config::{Compression, ParquetConfig, Statistics};

pub fn writer_properties(cfg: &ParquetConfig) -> Arc<WriterProperties> {
    let compression = match cfg.compression {
        Compression::Zstd(l) => PqCompression::ZSTD(ZstdLevel::try_new(l).unwrap_or_default()),
        Compression::Gzip(l) => PqCompression::GZIP(GzipLevel::try_new(l).unwrap_or_default()),
        Compression::Snappy => PqCompression::SNAPPY,
        Compression::Lz4 => PqCompression::LZ4_RAW,
        Compression::None => PqCompression::UNCOMPRESSED,
    };
    let statistics = match cfg.statistics {
        Statistics::None => EnabledStatistics::None,
        Statistics::Chunk => EnabledStatistics::Chunk,
        Statistics::Page => EnabledStatistics::Page,
    };
    Arc::new(
        WriterProperties::builder()
            // Version 1 pages: the widest reader support (older Spark and Athena engines).
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(compression)
            .set_dictionary_enabled(cfg.dictionary)
            .set_statistics_enabled(statistics)
            .set_max_row_group_row_count(Some(cfg.row_group_rows))
            .set_data_page_size_limit(cfg.data_page_bytes)
            .set_created_by(format!("landfall {}", env!("CARGO_PKG_VERSION")))
            .build(),
    )
}
