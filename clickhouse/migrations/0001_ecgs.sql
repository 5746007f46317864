-- ECGs: one row per ECG, written by the ingest gateway when the ECG is opened.
-- ReplacingMergeTree keeps one row per (tenant, ecg_id) if a client retry writes it twice;
-- read with `LIMIT 1 BY tenant, ecg_id` (or FINAL) for exactly one row per ECG.
CREATE TABLE IF NOT EXISTS ecgs
(
    tenant         LowCardinality(String)        COMMENT 'Owner: the tenant of the client that opened the ECG',
    ecg_id         UUID                          COMMENT 'Id returned by POST /v1/ecgs',
    device_id      String                        COMMENT 'Device that recorded the ECG, as the client names it',
    sample_rate_hz Float64                       COMMENT 'Samples per second per lead',
    leads          Array(LowCardinality(String)) COMMENT 'Lead names in device order',
    units          LowCardinality(String)        COMMENT 'Unit of samples.value: mV or uV',
    started_at     DateTime64(6, 'UTC')          COMMENT 'Time of sample 0',
    final_seq      Nullable(UInt32)              COMMENT 'Seq of the last chunk, when known at creation (whole-signal uploads)',
    created_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the gateway accepted the ECG'
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant, ecg_id)
COMMENT 'One row per ECG. Join samples and lead_chunks on (tenant, ecg_id).';
