-- Per block and lead, its smallest and largest value and how many samples sit at either, written
-- by the processor with the block: what a window's signal-quality verdict needs (a flat lead, a
-- clipped one; ecg_signal::quality), read from three numbers per block instead of decoding every
-- sample. NULL for blocks written before this migration (they have no beats either). In the
-- lead's units, as the values. Every statement can run again.

ALTER TABLE blocks
    ADD COLUMN IF NOT EXISTS lo Nullable(Float64) COMMENT 'Smallest value of the block (NULL before migration 15)' AFTER analytic_states,
    ADD COLUMN IF NOT EXISTS hi Nullable(Float64) COMMENT 'Largest value of the block' AFTER lo,
    ADD COLUMN IF NOT EXISTS at_extremes Nullable(UInt32) COMMENT 'Samples equal to lo or hi' AFTER hi;

ALTER TABLE waiting_blocks
    ADD COLUMN IF NOT EXISTS lo Nullable(Float64) COMMENT 'Smallest value of the block' AFTER analytic_states,
    ADD COLUMN IF NOT EXISTS hi Nullable(Float64) COMMENT 'Largest value of the block' AFTER lo,
    ADD COLUMN IF NOT EXISTS at_extremes Nullable(UInt32) COMMENT 'Samples equal to lo or hi' AFTER hi;
