-- Storage v2, step 2: the samples written before migration 10 move into `blocks`, and the old
-- per-sample tables become views over the blocks, so analysts' SQL keeps working:
--   samples         one row per sample (placed blocks, then waiting blocks not yet placed);
--   lead_chunks     one row per placed chunk and lead, with the running totals;
--   block_values    one row per block, its values decoded into an array;
--   samples_window  a parameterised view: one lead's samples in a time window, reading only
--                   the blocks whose bounds overlap it.
--
-- Order, so that nothing is lost even while an old processor still runs:
--   1. `chunk_ingest` is renamed away: an old processor's next insert fails, so its Kafka
--      offsets stay uncommitted and the new processor reads those chunks again. The migration
--      refuses to go on while one of the old processor's inserts is still running.
--   2. Every chunk and lead of `lead_chunks` not yet in `blocks` is copied, its samples from
--      `samples` in sample_index order, as the stored form the old rows had (see below).
--   3. The copy is verified against the old tables: per chunk and lead, the number of samples
--      and a hash of every (sample_index, value bits, adc); every lead_chunks column; no chunk
--      twice. A difference stops the migration (the runner stops at an error) with the old
--      tables still in place.
--   4. Only then are the materialized views and `chunk_ingest` dropped, and `samples` and
--      `lead_chunks` replaced by views of the same names. CREATE OR REPLACE drops the old table
--      in the same statement, so there is no moment without a `samples`.
--
-- Every statement can run again at any point (a crash before the migration was recorded):
-- renames and drops are IF EXISTS, views are CREATE OR REPLACE, and the copy and the
-- verification only read while `samples` is still the old table (the views keep the old
-- columns, so the statements stay valid, and they then read nothing). Two first runs at the
-- same time are refused as well as ClickHouse allows: a run stops while another run's copy is
-- in flight, and the check for chunks copied twice runs every time.
--
-- The stored form of a copied block (per chunk and lead), from the rows' value_codec:
--   adc      every sample has its ADC count and one calibration gives every value back bit for
--            bit: ints are the counts. Digital samples stored before migration 5 (value_codec
--            `raw`, adc_gain 0) take the calibration of their lead in `ecgs`;
--   decimal  otherwise, if the `decimal` samples share one scale and all but a few (at most a
--            quarter, plus 16, as clickhouse/src/blocks.rs allows) are `decimal` with an integer
--            that fits Int32: ints at that scale, the others in raw at their positions raw_at;
--   raw      otherwise: every value as the Float64 it was.
-- Rows written before migration 9 keep fingerprint 0 (unknown), as in lead_chunks. `units`
-- comes from the ECG's row in `ecgs` ('' if it has none).

-- 1. No old processor writes from here on.
RENAME TABLE IF EXISTS chunk_ingest TO chunk_ingest_v1;

SELECT throwIf(count() > 0,
    'migration 11: an insert into chunk_ingest is still running; stop the old processor and run the migration again')
FROM system.processes
WHERE current_database = currentDatabase() AND query_kind = 'Insert'
  AND positionCaseInsensitive(query, 'chunk_ingest') > 0;

SELECT throwIf(count() > 0,
    'migration 11 is copying samples in another process; run the migration again when it is done')
FROM system.processes
WHERE current_database = currentDatabase() AND query_id != queryID()
  AND positionCaseInsensitive(query, 'migration 11 copy') > 0;

-- The decoded blocks: a stored form becomes values here, with the arithmetic of
-- clickhouse/src/blocks.rs Form::values (samples_window repeats it, to filter blocks before
-- decoding them). `samples` and the verification read this view.
CREATE OR REPLACE VIEW block_values AS
SELECT
    tenant, ecg_id, lead, lead_index, seq, placed, device_id, units, fingerprint, is_final,
    sample_rate_hz, started_at, first_sample, samples, first_ts, last_ts,
    codec, ints, scale, adc_gain, adc_baseline, raw, raw_at,
    multiIf(
        codec = 'adc', arrayMap(i -> (toInt64(i) - adc_baseline) / adc_gain, ints),
        codec = 'raw', raw,
        empty(raw_at), arrayMap(i -> i / intExp10(scale), ints),
        arrayMap((i, k) -> if(has(raw_at, k), raw[indexOf(raw_at, k)], i / intExp10(scale)),
                 ints, range(length(ints)))) AS values,
    if(codec = 'adc', ints, []) AS counts
FROM (
    SELECT tenant, ecg_id, lead, lead_index, seq, true AS placed, device_id, units, fingerprint,
           is_final, sample_rate_hz, started_at,
           CAST(first_sample, 'Nullable(UInt64)') AS first_sample, samples,
           CAST(first_ts, 'Nullable(DateTime64(6, \'UTC\'))') AS first_ts,
           CAST(last_ts, 'Nullable(DateTime64(6, \'UTC\'))') AS last_ts,
           codec, ints, scale, adc_gain, adc_baseline, raw, raw_at
    FROM blocks
    UNION ALL
    -- Between the processor's write to `blocks` and its delete here, a chunk is in both
    -- tables: `blocks` wins. A waiting block's position is unknown: NULL.
    SELECT tenant, ecg_id, lead, lead_index, seq, false, device_id, units, fingerprint,
           is_final, sample_rate_hz, started_at, NULL, samples, NULL, NULL,
           codec, ints, scale, adc_gain, adc_baseline, raw, raw_at
    FROM waiting_blocks
    WHERE (tenant, ecg_id, lead, seq) NOT IN (
        SELECT tenant, ecg_id, lead, seq FROM blocks
        WHERE (tenant, ecg_id) IN (SELECT tenant, ecg_id FROM waiting_blocks))
);

-- 2. The copy. `samples` is read in its sorting order and aggregated in that order
-- (optimize_aggregation_in_order), one lead of one ECG at a time, so memory stays bounded by
-- the longest lead instead of the whole table. The chunks' rows of lead_chunks drive it, so
-- that a chunk without samples is copied too.
INSERT INTO blocks (tenant, ecg_id, lead, seq, lead_index, device_id, units, fingerprint, is_final,
    sample_rate_hz, started_at, first_sample, samples, codec, ints, scale, adc_gain, adc_baseline,
    raw, raw_at, first_sign, last_sign, crossings, samples_total, crossings_total, last_sign_total,
    kafka_partition, kafka_offset, processed_at, produced_at)
WITH
    (SELECT count() FROM system.tables
     WHERE database = currentDatabase() AND name = 'samples' AND engine = 'MergeTree') = 1 AS old_tables,
    length(s.rows) AS n,
    arrayMap(r -> r.5, s.rows) AS row_values,
    arrayMap(r -> r.6, s.rows) AS row_adc,
    if(s.max_gain > 0, s.max_gain, e.gains[c.lead_index + 1]) AS gain,
    if(s.max_gain > 0, s.gain_baseline, e.baselines[c.lead_index + 1]) AS baseline,
    n > 0 AND gain > 0 AND arrayAll((a, v) -> a IS NOT NULL
            AND reinterpretAsUInt64((toInt64(assumeNotNull(a)) - baseline) / gain) = reinterpretAsUInt64(v),
        row_adc, row_values) AS is_adc,
    -- Per sample: stored as a decimal whose integer fits Int32.
    arrayMap(r -> r.2 = 'decimal' AND r.3 BETWEEN -2147483648 AND 2147483647, s.rows) AS has_int,
    n > 0 AND NOT is_adc AND s.scales <= 1 AND n - arraySum(has_int) < intDiv(n, 4) + 16 AS is_decimal
SELECT
    c.tenant, c.ecg_id, c.lead, c.seq, c.lead_index, c.device_id, e.units, c.fingerprint, c.is_final,
    c.sample_rate_hz, c.started_at, c.first_sample, toUInt32(n),
    multiIf(is_adc, 'adc', is_decimal, 'decimal', 'raw'),
    multiIf(is_adc, arrayMap(a -> assumeNotNull(a), row_adc),
            is_decimal, arrayMap((r, h) -> if(h, toInt32(r.3), 0), s.rows, has_int),
            []),
    if(is_decimal, s.scale, 0),
    if(is_adc, gain, 0),
    if(is_adc, baseline, 0),
    multiIf(is_adc, [], is_decimal, arrayFilter((v, h) -> NOT h, row_values, has_int), row_values),
    if(is_decimal, arrayFilter((k, h) -> NOT h, range(toUInt32(n)), has_int), []),
    c.first_sign, c.last_sign, c.crossings, c.samples_total, c.crossings_total, c.last_sign_total,
    c.kafka_partition, c.kafka_offset, c.processed_at, c.produced_at
FROM (
    SELECT tenant, ecg_id, lead, seq,
           arraySort(groupArray((sample_index, value_codec, value_int, value_scale, value, adc))) AS rows,
           max(adc_gain) AS max_gain,
           anyIf(adc_baseline, adc_gain > 0) AS gain_baseline,
           uniqExactIf(value_scale, value_codec = 'decimal') AS scales,
           anyIf(value_scale, value_codec = 'decimal') AS scale
    FROM samples
    WHERE old_tables
      AND (tenant, ecg_id) IN (
            SELECT tenant, ecg_id FROM lead_chunks
            WHERE (tenant, ecg_id, lead, seq) NOT IN (SELECT tenant, ecg_id, lead, seq FROM blocks))
      AND (tenant, ecg_id, lead, seq) NOT IN (SELECT tenant, ecg_id, lead, seq FROM blocks)
    GROUP BY tenant, ecg_id, lead, seq
) AS s
RIGHT JOIN (
    SELECT * FROM lead_chunks
    WHERE old_tables
      AND (tenant, ecg_id, lead, seq) NOT IN (SELECT tenant, ecg_id, lead, seq FROM blocks)
    LIMIT 1 BY tenant, ecg_id, lead, seq
) AS c ON s.tenant = c.tenant AND s.ecg_id = c.ecg_id AND s.lead = c.lead AND s.seq = c.seq
LEFT JOIN (
    SELECT tenant, ecg_id,
           argMax(units, created_at) AS units,
           argMax(adc_gain, created_at) AS gains,
           argMax(adc_baseline, created_at) AS baselines
    FROM ecgs
    GROUP BY tenant, ecg_id
) AS e ON e.tenant = c.tenant AND e.ecg_id = c.ecg_id
SETTINGS optimize_aggregation_in_order = 1, max_partitions_per_insert_block = 0,
    log_comment = 'migration 11 copy';

-- 3. Verification. Every sample of the old table is in its block, bit for bit, at its
-- sample_index, with its ADC count (a missing adc hashes as a value no Int32 has).
SELECT throwIf(count() > 0,
    'migration 11: blocks differ from samples for some chunks (samples without a lead_chunks row are not copied); the old tables are kept')
FROM (
    SELECT tenant, ecg_id, lead, seq, count() AS n,
           sum(cityHash64(sample_index, reinterpretAsUInt64(value), ifNull(toInt64(adc), 1 + 0xFFFFFFFF))) AS h
    FROM samples
    WHERE (SELECT count() FROM system.tables
           WHERE database = currentDatabase() AND name = 'samples' AND engine = 'MergeTree') = 1
    GROUP BY tenant, ecg_id, lead, seq
) AS old
LEFT JOIN (
    SELECT tenant, ecg_id, lead, seq, count() AS n,
           sum(cityHash64(first_sample + k, reinterpretAsUInt64(value),
                          if(codec = 'adc', toInt64(adc_count), 1 + 0xFFFFFFFF))) AS h
    FROM block_values
    ARRAY JOIN values AS value, arrayResize(counts, length(values)) AS adc_count, range(length(values)) AS k
    WHERE placed
      AND (SELECT count() FROM system.tables
           WHERE database = currentDatabase() AND name = 'samples' AND engine = 'MergeTree') = 1
    GROUP BY tenant, ecg_id, lead, seq
) AS new ON new.tenant = old.tenant AND new.ecg_id = old.ecg_id AND new.lead = old.lead AND new.seq = old.seq
WHERE new.n != old.n OR new.h != old.h;

-- Every chunk and lead of the old lead_chunks is in `blocks` with the same columns.
SELECT throwIf(count() > 0,
    'migration 11: blocks differ from lead_chunks for some chunks; the old tables are kept')
FROM (
    SELECT * FROM lead_chunks
    WHERE (SELECT count() FROM system.tables
           WHERE database = currentDatabase() AND name = 'lead_chunks' AND engine = 'MergeTree') = 1
    LIMIT 1 BY tenant, ecg_id, lead, seq
) AS old
LEFT JOIN (
    SELECT true AS found, tenant, ecg_id, lead, seq, lead_index, device_id, fingerprint, is_final,
           sample_rate_hz, started_at, first_sample, samples, first_sign, last_sign, crossings,
           samples_total, crossings_total, last_sign_total, kafka_partition, kafka_offset,
           processed_at, produced_at
    FROM blocks
) AS new ON new.tenant = old.tenant AND new.ecg_id = old.ecg_id AND new.lead = old.lead AND new.seq = old.seq
WHERE NOT new.found
   OR (old.lead_index, old.device_id, old.fingerprint, old.is_final, old.sample_rate_hz,
       old.started_at, old.first_sample, old.samples, old.first_sign, old.last_sign, old.crossings,
       old.samples_total, old.crossings_total, old.last_sign_total, old.kafka_partition,
       old.kafka_offset, old.processed_at, old.produced_at)
   != (new.lead_index, toString(new.device_id), new.fingerprint, new.is_final, new.sample_rate_hz,
       new.started_at, new.first_sample, new.samples, new.first_sign, new.last_sign, new.crossings,
       new.samples_total, new.crossings_total, new.last_sign_total, new.kafka_partition,
       new.kafka_offset, new.processed_at, new.produced_at);

-- No chunk was copied twice (two first runs at once).
SELECT throwIf(count() > 0,
    'migration 11: some chunks are in blocks more than once: the migration ran twice at the same time')
FROM (SELECT 1 FROM blocks GROUP BY tenant, ecg_id, lead, seq HAVING count() > 1);

-- 4. The old write path goes, then the old tables become views of the same names.
DROP VIEW IF EXISTS samples_mv;

DROP VIEW IF EXISTS lead_chunks_mv;

DROP TABLE IF EXISTS chunk_ingest_v1;

-- The SETTINGS clause of the next two is for the drop of the old table that CREATE OR REPLACE
-- does (by default ClickHouse refuses to drop a table over 50 GB); it is stored with the view's
-- query and has no effect on reads.
--
-- One row per sample, today's columns. Placed samples have their sample_index and ts;
-- samples of chunks not yet placed (placed = false) have NULL there. The columns after
-- `placed` are the per-sample stored form of migration 5, kept so that queries written
-- against it keep working (the samples of a decimal block kept in `raw` read value_codec 'raw').
CREATE OR REPLACE VIEW samples AS
SELECT
    tenant, ecg_id, lead,
    first_sample + k AS sample_index,
    addMicroseconds(started_at, toInt64(round(sample_index * 1e6 / sample_rate_hz))) AS ts,
    value,
    seq,
    if(codec = 'adc', adc_count, NULL) AS adc,
    placed,
    CAST(multiIf(codec = 'adc', 'adc',
                 codec = 'decimal' AND NOT (int = 0 AND reinterpretAsUInt64(value) != 0), 'decimal',
                 'raw'),
         'Enum8(\'raw\' = 0, \'decimal\' = 1, \'adc\' = 2)') AS value_codec,
    if(value_codec = 'decimal', toInt64(int), 0) AS value_int,
    scale AS value_scale,
    if(value_codec = 'raw', value, 0) AS value_raw,
    adc_gain,
    adc_baseline
FROM block_values
ARRAY JOIN values AS value, arrayResize(ints, length(values)) AS int,
    arrayResize(counts, length(values)) AS adc_count, range(length(values)) AS k
SETTINGS max_table_size_to_drop = 0;

-- One row per placed chunk and lead, the columns of the old table.
CREATE OR REPLACE VIEW lead_chunks AS
SELECT
    tenant, ecg_id, lead, lead_index, seq, fingerprint, toString(device_id) AS device_id, is_final,
    sample_rate_hz, started_at, first_sample, samples, first_sign, last_sign, crossings,
    samples_total, crossings_total, last_sign_total, kafka_partition, kafka_offset,
    processed_at, produced_at
FROM blocks
SETTINGS max_table_size_to_drop = 0;

-- One lead's samples with from <= ts < to: the blocks are filtered on their bounds first
-- (the primary key and the minmax index ts_bounds of `blocks` skip the others), then decoded
-- as in block_values. Placed blocks only: a waiting block has no time yet.
CREATE OR REPLACE VIEW samples_window AS
SELECT
    first_sample + k AS sample_index,
    addMicroseconds(started_at, toInt64(round(sample_index * 1e6 / sample_rate_hz))) AS ts,
    value,
    seq,
    if(codec = 'adc', adc_count, NULL) AS adc
FROM (
    SELECT first_sample, started_at, sample_rate_hz, seq, codec,
           multiIf(
               codec = 'adc', arrayMap(i -> (toInt64(i) - adc_baseline) / adc_gain, ints),
               codec = 'raw', raw,
               empty(raw_at), arrayMap(i -> i / intExp10(scale), ints),
               arrayMap((i, k) -> if(has(raw_at, k), raw[indexOf(raw_at, k)], i / intExp10(scale)),
                        ints, range(length(ints)))) AS values,
           arrayResize(if(codec = 'adc', ints, []), length(values)) AS counts
    FROM blocks
    WHERE tenant = {tenant:String} AND ecg_id = {ecg_id:UUID} AND lead = {lead:String}
      AND first_ts < {to:DateTime64(6, 'UTC')} AND last_ts >= {from:DateTime64(6, 'UTC')}
)
ARRAY JOIN values AS value, counts AS adc_count, range(length(values)) AS k
WHERE ts >= {from:DateTime64(6, 'UTC')} AND ts < {to:DateTime64(6, 'UTC')};
