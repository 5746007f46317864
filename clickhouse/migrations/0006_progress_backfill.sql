-- ECGs processed before ecg_progress existed (migration 4) get their row from lead_chunks,
-- which holds a gapless prefix of each ECG: next_seq is its number of distinct seqs. The
-- status endpoint counts a chunk as written only once ecg_progress says so (see
-- query-api/src/routes.rs), so without this those ECGs would never read as complete.
-- A second run adds nothing: ECGs that already have a row are skipped.
INSERT INTO ecg_progress (tenant, ecg_id, next_seq, waiting, final_seq, updated_at)
SELECT
    tenant,
    ecg_id,
    toUInt32(uniqExact(seq)) AS next_seq,
    CAST([], 'Array(UInt32)') AS waiting,
    if(max(is_final), maxIf(seq, is_final), NULL) AS final_seq,
    max(processed_at) AS updated_at
FROM lead_chunks
WHERE (tenant, ecg_id) NOT IN (SELECT tenant, ecg_id FROM ecg_progress)
GROUP BY tenant, ecg_id;
