-- Idempotency keys of POST /v1/ecgs: a client that sends `Idempotency-Key` with a create gets,
-- for a retry with the same key and body, the same ECG and the same answer, through any gateway
-- instance and across restarts. The gateway writes the key's row (its claim) before producing
-- anything, with what a retry needs to produce the very same chunks again: the ECG id, the
-- start time it chose when the body gave none, and how it cuts the signal. The ECG's row in
-- ecgs, written last, says the create completed; a retry then produces nothing.
--
-- Plain MergeTree, not Replacing: a key's rows are never collapsed, so the first claim stays the
-- one every read picks (ORDER BY created_at), merged or not. A key has more than one row only
-- after a race (the same key sent at the same moment, or with another body). Rows expire after
-- 24 hours (TTL, applied by merges: reads also skip older rows); after that a key may be used
-- again, and an identical retry still finds its ECG, whose id is derived from tenant, client,
-- key and body.
--
-- Cluster-ready: the sorting key starts with (tenant, client_id, idempotency_key) and the
-- sharding key is cityHash64(tenant, client_id, idempotency_key), every claim of a key on one
-- shard. With replicas (ReplicatedMergeTree), a gateway must read the claim it just wrote: insert
-- with insert_quorum = 'auto' and read with select_sequential_consistency = 1, or route a key's
-- requests to one replica.

CREATE TABLE IF NOT EXISTS idempotency_keys
(
    tenant          LowCardinality(String) COMMENT 'The tenant of the client that sent the key',
    client_id       String                 COMMENT 'The OAuth2 client that sent the key: keys are per client',
    idempotency_key String                 COMMENT 'The Idempotency-Key header, 1 to 255 visible ASCII characters',
    ecg_id          UUID                   COMMENT 'The ECG the create opens (see ecgs); derived from tenant, client, key and body',
    request_digest  String                 COMMENT 'XXH3-128 (hex) of the body format and bytes: another body with this key is refused',
    started_at      DateTime64(6, 'UTC')   COMMENT 'Time of sample 0: the body''s, or the gateway''s clock when the body gave none',
    chunk_samples   UInt32                 COMMENT 'Samples per lead per chunk the signal is cut into',
    created_at      DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'When the gateway claimed the key'
)
ENGINE = MergeTree
ORDER BY (tenant, client_id, idempotency_key, created_at)
TTL toDateTime(created_at) + INTERVAL 1 DAY
COMMENT 'Idempotency-Key of ECG creates: the first claim of a key wins; rows expire after 24 h.';
