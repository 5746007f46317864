-- The size of the chunks the processor holds back, so that the status endpoint can say how
-- many samples were received (written + waiting), not only how many were written. Rows
-- written before this migration read 0: their waiting chunks count once written.
ALTER TABLE ecg_progress
    ADD COLUMN IF NOT EXISTS waiting_samples UInt64 DEFAULT 0
    COMMENT 'Samples, all leads together, of the chunks in `waiting`' AFTER waiting;
