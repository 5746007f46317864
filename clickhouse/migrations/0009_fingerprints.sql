-- Each chunk's content fingerprint (64-bit XXH3 of its samples, see processor/src/state.rs),
-- so that a resent seq whose samples differ from the stored chunk is recorded as a conflict
-- instead of being dropped as a duplicate; and the kind of each failed_chunks row, so that a
-- conflict (the stored chunk stays valid) does not turn its ECG `failed`.
-- Rows written before this migration read fingerprint 0 (unknown: a resend is then taken
-- as a duplicate) and kind 'refused'. Every statement is idempotent.

ALTER TABLE chunk_ingest ADD COLUMN IF NOT EXISTS fingerprint UInt64 AFTER seq;

ALTER TABLE lead_chunks
    ADD COLUMN IF NOT EXISTS fingerprint UInt64 DEFAULT 0
    COMMENT 'XXH3-64 of the chunk''s samples, the same on every lead''s row; 0 for chunks written before migration 9'
    AFTER seq;

ALTER TABLE failed_chunks
    ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'refused'
    COMMENT 'refused: the chunk was not stored; conflict: its seq was resent with other samples, the stored chunk is kept'
    AFTER seq;

-- MODIFY QUERY swaps the view's query atomically, as in migrations 3, 5 and 7.
ALTER TABLE lead_chunks_mv MODIFY QUERY
SELECT
    tenant, ecg_id, lead, lead_index, seq, fingerprint, device_id, is_final, sample_rate_hz,
    started_at, first_sample, toUInt32(length(values)) AS samples,
    first_sign, last_sign, crossings, samples_total, crossings_total, last_sign_total,
    kafka_partition, kafka_offset, processed_at, produced_at
FROM chunk_ingest;
