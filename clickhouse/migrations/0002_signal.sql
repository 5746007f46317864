-- The processor writes each batch with ONE insert into chunk_ingest (a Null table: it stores
-- nothing). Two materialized views fan that block out into `samples` and `lead_chunks`.
-- One insert per batch means a batch is either written or not; the views' targets keep
-- insert-deduplication hashes (non_replicated_deduplication_window) so that retrying the
-- same batch after an error cannot write any row twice. See processor/README.md.
CREATE TABLE IF NOT EXISTS chunk_ingest
(
    tenant          LowCardinality(String),
    ecg_id          UUID,
    device_id       String,
    lead            LowCardinality(String),
    lead_index      UInt8,
    seq             UInt32,
    is_final        Bool,
    sample_rate_hz  Float64,
    started_at      DateTime64(6, 'UTC'),
    first_sample    UInt64,
    values          Array(Float64),
    first_sign      Int8,
    last_sign       Int8,
    crossings       UInt32,
    samples_total   UInt64,
    crossings_total UInt64,
    last_sign_total Int8,
    kafka_partition Int32,
    kafka_offset    Int64,
    processed_at    DateTime64(3, 'UTC')
)
ENGINE = Null;

-- Every sample of every lead, one row each.
CREATE TABLE IF NOT EXISTS samples
(
    tenant       LowCardinality(String) COMMENT 'Owner of the ECG',
    ecg_id       UUID                   COMMENT 'The ECG (see ecgs)',
    lead         LowCardinality(String) COMMENT 'Lead name, e.g. II or V1',
    sample_index UInt64                 COMMENT 'Position in the lead, from 0',
    ts           DateTime64(6, 'UTC')   COMMENT 'started_at + sample_index / sample_rate_hz',
    value        Float64 CODEC(ZSTD(1)) COMMENT 'The sample exactly as sent, in ecgs.units',
    seq          UInt32 CODEC(Delta, ZSTD(1)) COMMENT 'The chunk that carried the sample'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, ecg_id, lead, sample_index)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Raw samples: one row per sample per lead.';

-- One row per chunk and lead: the chunk's zero-crossing summary and the running totals
-- from sample 0 through the end of the chunk (chunks are written in seq order, no gaps).
CREATE TABLE IF NOT EXISTS lead_chunks
(
    tenant          LowCardinality(String) COMMENT 'Owner of the ECG',
    ecg_id          UUID                   COMMENT 'The ECG (see ecgs)',
    lead            LowCardinality(String) COMMENT 'Lead name',
    lead_index      UInt8                  COMMENT 'Position of the lead in ecgs.leads',
    seq             UInt32                 COMMENT 'Chunk position in the ECG, from 0',
    device_id       String                 COMMENT 'Device that recorded the ECG',
    is_final        Bool                   COMMENT 'True on the ECG''s last chunk',
    sample_rate_hz  Float64                COMMENT 'Samples per second per lead',
    started_at      DateTime64(6, 'UTC')   COMMENT 'Time of sample 0 of the ECG',
    first_sample    UInt64                 COMMENT 'sample_index of the chunk''s first sample',
    samples         UInt32                 COMMENT 'Samples of this lead in the chunk',
    first_sign      Int8                   COMMENT 'Sign of the chunk''s first non-zero sample (0: none)',
    last_sign       Int8                   COMMENT 'Sign of the chunk''s last non-zero sample (0: none)',
    crossings       UInt32                 COMMENT 'Zero crossings inside the chunk',
    samples_total   UInt64                 COMMENT 'Samples of this lead from sample 0 through this chunk',
    crossings_total UInt64                 COMMENT 'Zero crossings of this lead from sample 0 through this chunk',
    last_sign_total Int8                   COMMENT 'Last non-zero sign from sample 0 through this chunk',
    kafka_partition Int32                  COMMENT 'Where the chunk was read from',
    kafka_offset    Int64                  COMMENT 'Where the chunk was read from',
    processed_at    DateTime64(3, 'UTC')   COMMENT 'When the processor wrote the chunk'
)
ENGINE = MergeTree
ORDER BY (tenant, ecg_id, lead, seq)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per chunk and lead: zero-crossing summary and running totals.';

CREATE MATERIALIZED VIEW IF NOT EXISTS samples_mv TO samples AS
SELECT
    tenant,
    ecg_id,
    lead,
    first_sample + i - 1 AS sample_index,
    addMicroseconds(started_at, toInt64(round((first_sample + i - 1) * 1e6 / sample_rate_hz))) AS ts,
    value,
    seq
FROM chunk_ingest
ARRAY JOIN values AS value, arrayEnumerate(values) AS i;

CREATE MATERIALIZED VIEW IF NOT EXISTS lead_chunks_mv TO lead_chunks AS
SELECT
    tenant, ecg_id, lead, lead_index, seq, device_id, is_final, sample_rate_hz, started_at,
    first_sample, toUInt32(length(values)) AS samples,
    first_sign, last_sign, crossings, samples_total, crossings_total, last_sign_total,
    kafka_partition, kafka_offset, processed_at
FROM chunk_ingest;

-- Per-lead totals of every ECG, for analysts: the running totals of each lead's last chunk.
CREATE VIEW IF NOT EXISTS lead_insights AS
SELECT
    tenant,
    ecg_id,
    lead,
    argMax(samples_total, seq)   AS samples,
    argMax(crossings_total, seq) AS zero_crossings,
    if(samples = 0, 0, zero_crossings * any(sample_rate_hz) / samples) AS zero_crossing_rate_hz,
    uniqExact(seq)               AS chunks,
    max(seq)                     AS last_seq,
    max(is_final)                AS final_seen,
    max(processed_at)            AS last_processed_at
FROM lead_chunks
GROUP BY tenant, ecg_id, lead;

-- Messages the processor could not use, with the reason. The same Kafka message
-- replayed after a restart collapses to one row per (partition, offset) at merge time;
-- read with `LIMIT 1 BY kafka_partition, kafka_offset` for exact counts.
CREATE TABLE IF NOT EXISTS failed_chunks
(
    tenant          LowCardinality(String) COMMENT 'Owner, when the message could be read that far',
    ecg_id          UUID                   COMMENT 'From the message key; nil if unreadable',
    seq             Nullable(UInt32)       COMMENT 'Chunk seq, when the message could be read that far',
    reason          String                 COMMENT 'Why the chunk was refused',
    kafka_topic     LowCardinality(String),
    kafka_partition Int32,
    kafka_offset    Int64,
    failed_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, ecg_id, kafka_topic, kafka_partition, kafka_offset)
COMMENT 'Dead-lettered chunks and why.';
