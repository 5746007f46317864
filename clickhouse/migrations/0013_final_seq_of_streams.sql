-- ecgs.final_seq is now also written for streamed ECGs: when the gateway produces a chunk marked
-- final, or an end (POST /v1/ecgs/{id}/end), it writes the ECG's row again with the final seq, so
-- that a later chunk gets 409. Only the column's description changes. Idempotent.

ALTER TABLE ecgs
    COMMENT COLUMN final_seq 'Seq of the last chunk, once the gateway knows it: at creation with the whole signal, or from a whole-signal upload, a chunk marked final or an end';
