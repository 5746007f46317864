-- Beats: the R peaks that the processor's streaming QRS detector (ecg_signal::BeatDetector)
-- finds in each lead, stored with the block whose placing decided them, so they are written in
-- the same insert as the samples and exactly once with them (a chunk is placed once; a replay
-- recomputes the same beats from the same state). A beat is decided up to 0.5 s of signal after
-- its peak, so a block's beats may lie in the block before it: `beats` holds absolute sample
-- indices. The detector's state after the block is stored with it (`analytic_states`), so a
-- restart or a rebalance resumes from the last placed block without re-reading the recording.
--
-- In `waiting_blocks` these columns are empty: beats are found when a chunk is placed, in seq
-- order. ECGs whose rate is outside the detector's 100 to 4,000 Hz have no beats. Blocks placed
-- before this migration have none either, and the detector of such an ECG starts afresh at its
-- next placed block.
--
-- The view `beats` is the table analysts query: one row per beat.
-- Every statement can run again.

ALTER TABLE blocks
    ADD COLUMN IF NOT EXISTS beats Array(UInt64) CODEC(Delta, ZSTD(1))
        COMMENT 'R peaks decided while placing this block: sample indices in the lead, ascending (may lie in earlier blocks)'
        AFTER last_sign_total,
    ADD COLUMN IF NOT EXISTS beat_rr Array(UInt32) CODEC(ZSTD(1))
        COMMENT 'Per beat: samples since the lead''s previous beat (0 for its first beat)'
        AFTER beats,
    ADD COLUMN IF NOT EXISTS last_beat UInt64
        COMMENT '1 + sample index of the lead''s last beat from sample 0 through this block; 0 if none yet'
        AFTER beat_rr,
    ADD COLUMN IF NOT EXISTS analytic_states Array(String) CODEC(ZSTD(1))
        COMMENT 'The lead''s order-dependent analytics (the beat detector) saved after this block (ecg_signal::AnyAnalytic::save)'
        AFTER last_beat;

ALTER TABLE waiting_blocks
    ADD COLUMN IF NOT EXISTS beats Array(UInt64) CODEC(Delta, ZSTD(1))
        COMMENT 'Empty: beats are found when the chunk is placed'
        AFTER last_sign_total,
    ADD COLUMN IF NOT EXISTS beat_rr Array(UInt32) CODEC(ZSTD(1)) COMMENT 'Empty' AFTER beats,
    ADD COLUMN IF NOT EXISTS last_beat UInt64 COMMENT '0' AFTER beat_rr,
    ADD COLUMN IF NOT EXISTS analytic_states Array(String) CODEC(ZSTD(1)) COMMENT 'Empty' AFTER last_beat;

-- One row per beat of a placed block: where (sample index, time) and the RR interval before it.
CREATE OR REPLACE VIEW beats AS
SELECT
    tenant, ecg_id, lead, device_id,
    sample_index,
    addMicroseconds(started_at, toInt64(round(sample_index * 1e6 / sample_rate_hz))) AS ts,
    if(rr = 0, NULL, rr * 1000 / sample_rate_hz) AS rr_ms,
    seq
FROM blocks
ARRAY JOIN beats AS sample_index, beat_rr AS rr;
