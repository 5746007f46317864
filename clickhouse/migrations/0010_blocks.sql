-- Storage v2: samples as compressed blocks, one row per (tenant, ECG, lead, chunk), written
-- by the processor with one INSERT per table and batch (no materialized-view fan-out).
--
-- `blocks` holds the placed chunks: each ECG's chunks 0 .. n-1 without a gap, with the
-- position of their first sample and the zero-crossing running totals through them.
-- `waiting_blocks` holds chunks that arrived after a gap, stored at once (nothing waits in
-- processor memory) but not yet placed: their first sample index is unknown until the gap
-- fills. Then the processor reads them back in seq order, writes them to `blocks`, and deletes
-- them here. Both tables have the same columns; in `waiting_blocks` the position and running
-- totals are 0 (unknown).
--
-- A block gives back every value bit for bit in one of three stored forms (`codec`), chosen per
-- chunk and lead by the processor (clickhouse/src/blocks.rs):
--   adc      (ints[k] - adc_baseline) / adc_gain: a digital ECG's ADC counts, as sent;
--   decimal  ints[k] / 10^scale, except the samples at raw_at (0-based), which are in raw:
--            physical samples on a decimal grid (0.05368 mV is 5368 at scale 5);
--   raw      raw[k]: the Float64 as sent, where neither is exact.
-- The view `samples` (migration 11) turns blocks back into one row per sample.
--
-- Cluster-ready: the sorting key starts with (tenant, ecg_id), the natural sharding key is
-- cityHash64(ecg_id) (every row of an ECG on one shard, as every message of an ECG is in one
-- Kafka partition), and nothing here depends on a single replica: swap MergeTree for
-- ReplicatedMergeTree and add a Distributed table per shard layout.

CREATE TABLE IF NOT EXISTS blocks
(
    tenant          LowCardinality(String) COMMENT 'Owner of the ECG',
    ecg_id          UUID                   COMMENT 'The ECG (see ecgs)',
    lead            LowCardinality(String) COMMENT 'Lead name, e.g. II or V1',
    seq             UInt32                 COMMENT 'Chunk position in the ECG, from 0',
    lead_index      UInt8                  COMMENT 'Position of the lead in ecgs.leads',
    device_id       LowCardinality(String) COMMENT 'Device that recorded the ECG',
    units           LowCardinality(String) COMMENT 'Units of the values: mV or uV',
    fingerprint     UInt64                 COMMENT 'XXH3-64 of the chunk''s samples, the same on every lead''s row',
    is_final        Bool                   COMMENT 'True on the ECG''s last chunk',
    sample_rate_hz  Float64                COMMENT 'Samples per second per lead',
    started_at      DateTime64(6, 'UTC')   COMMENT 'Time of sample 0 of the ECG',
    first_sample    UInt64                 COMMENT 'sample_index of the block''s first sample (0 in waiting_blocks: unknown)',
    samples         UInt32                 COMMENT 'Samples in the block',
    first_ts        DateTime64(6, 'UTC') MATERIALIZED
        addMicroseconds(started_at, toInt64(round(first_sample * 1e6 / sample_rate_hz)))
        COMMENT 'Time of the block''s first sample (block bounds: filter on them to read only the blocks of a time window)',
    last_ts         DateTime64(6, 'UTC') MATERIALIZED
        addMicroseconds(started_at, toInt64(round((first_sample + samples - 1) * 1e6 / sample_rate_hz)))
        COMMENT 'Time of the block''s last sample',
    codec           Enum8('adc' = 1, 'decimal' = 2, 'raw' = 3) COMMENT 'Stored form of the values: see the migration''s header',
    ints            Array(Int32) CODEC(Delta, ZSTD(1)) COMMENT 'adc: the ADC counts; decimal: each value times 10^scale',
    scale           UInt8                  COMMENT 'decimal: decimal places (0..9)',
    adc_gain        Float64                COMMENT 'adc: ADC counts per unit',
    adc_baseline    Int32                  COMMENT 'adc: the ADC count of 0 units',
    raw             Array(Float64) CODEC(ZSTD(1)) COMMENT 'raw: every value as sent; decimal: the values at raw_at',
    raw_at          Array(UInt32)          COMMENT 'decimal: 0-based positions of the values stored in raw',
    first_sign      Int8                   COMMENT 'Sign of the block''s first non-zero sample (0: none)',
    last_sign       Int8                   COMMENT 'Sign of the block''s last non-zero sample (0: none)',
    crossings       UInt32                 COMMENT 'Zero crossings inside the block',
    samples_total   UInt64                 COMMENT 'Samples of this lead from sample 0 through this block (0 in waiting_blocks)',
    crossings_total UInt64                 COMMENT 'Zero crossings of this lead from sample 0 through this block (0 in waiting_blocks)',
    last_sign_total Int8                   COMMENT 'Last non-zero sign from sample 0 through this block (0 in waiting_blocks)',
    kafka_partition Int32                  COMMENT 'Where the chunk was read from',
    kafka_offset    Int64                  COMMENT 'Where the chunk was read from',
    processed_at    DateTime64(3, 'UTC')   COMMENT 'When the processor wrote the block',
    produced_at     DateTime64(3, 'UTC')   COMMENT 'When the gateway accepted the chunk (Kafka message timestamp)',
    INDEX ts_bounds (first_ts, last_ts) TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (tenant, ecg_id, lead, seq)
-- A granule of 256 blocks (not 8192 rows): a time window of one lead reads ~512 rows of a
-- 24-hour recording instead of ~10,000, for a primary index of ~15 KB per 172,800 blocks.
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256
COMMENT 'Samples as blocks: per chunk and lead, the values in a compressed exact form, the block''s position and zero-crossing summary and running totals.';

CREATE TABLE IF NOT EXISTS waiting_blocks AS blocks
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (tenant, ecg_id, lead, seq)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256
COMMENT 'Chunks stored but not yet placed: they arrived after a gap (see blocks).';
