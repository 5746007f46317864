-- The digest of the body that gave an ECG its whole signal (PUT /v1/ecgs/{id}/signal), so that
-- an identical retry, whose first answer was lost, is answered as the first upload was, and a
-- different body is a conflict. Empty for ECGs that got no such upload, and for uploads before
-- this migration (a retry of those is a conflict, as it was). Idempotent.

ALTER TABLE ecgs
    ADD COLUMN IF NOT EXISTS signal_digest String DEFAULT ''
    COMMENT 'XXH3-128 (hex) of the format and bytes of the PUT body that made the ECG final; empty if none'
    AFTER final_seq;
