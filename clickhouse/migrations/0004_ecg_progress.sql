-- Where each ECG stands in the processor: written after every batch that touched the ECG,
-- so the status endpoint (and an analyst) can say which chunks are still missing.
-- ReplacingMergeTree keeps the newest row per ECG; read with `LIMIT 1 BY tenant, ecg_id`
-- after `ORDER BY updated_at DESC` (or FINAL) for exactly one row.
CREATE TABLE IF NOT EXISTS ecg_progress
(
    tenant     LowCardinality(String)  COMMENT 'Owner of the ECG',
    ecg_id     UUID                    COMMENT 'The ECG (see ecgs)',
    next_seq   UInt32                  COMMENT 'Chunks 0 .. next_seq - 1 are written (in samples and lead_chunks)',
    waiting    Array(UInt32)           COMMENT 'Seqs received but held back until an earlier seq arrives, ascending',
    final_seq  Nullable(UInt32)        COMMENT 'Seq of the last chunk, once a chunk marked final was seen',
    updated_at DateTime64(3, 'UTC')    COMMENT 'When the processor wrote this row'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, ecg_id)
COMMENT 'Per ECG: processed prefix and chunks waiting for a gap to fill (newest row wins).';
