-- When the gateway accepted each chunk: the Kafka message timestamp, set by the gateway's
-- producer when it produced the chunk. With processed_at it gives the pipeline's lag per
-- chunk, and ingest rates by acceptance time (the query API's /v1/streams/active and
-- /v1/pipeline). Rows written before this migration read 1970-01-01 00:00:00 (unknown).
-- Every statement is idempotent.

ALTER TABLE chunk_ingest ADD COLUMN IF NOT EXISTS produced_at DateTime64(3, 'UTC') AFTER processed_at;

ALTER TABLE lead_chunks
    ADD COLUMN IF NOT EXISTS produced_at DateTime64(3, 'UTC')
    COMMENT 'When the gateway accepted the chunk (Kafka message timestamp); 1970-01-01 for chunks written before migration 7'
    AFTER processed_at;

ALTER TABLE failed_chunks
    ADD COLUMN IF NOT EXISTS produced_at DateTime64(3, 'UTC')
    COMMENT 'When the gateway accepted the message (Kafka message timestamp); 1970-01-01 for rows written before migration 7'
    AFTER failed_at;

-- MODIFY QUERY swaps the view's query atomically, as in migrations 3 and 5.
ALTER TABLE lead_chunks_mv MODIFY QUERY
SELECT
    tenant, ecg_id, lead, lead_index, seq, device_id, is_final, sample_rate_hz, started_at,
    first_sample, toUInt32(length(values)) AS samples,
    first_sign, last_sign, crossings, samples_total, crossings_total, last_sign_total,
    kafka_partition, kafka_offset, processed_at, produced_at
FROM chunk_ingest;
