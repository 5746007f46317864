-- Samples in about 1 byte each instead of about 10, still exactly as sent.
--
-- A physical sample is a decimal on its device's grid (0.05368 mV): its Float64 bits compress
-- badly, the integer 5368 with 5 decimal places compresses well. The processor sends, per
-- chunk and lead, such integers and their scale next to the Float64 values; the view below
-- keeps the integer only where ClickHouse's own arithmetic gives back the sent Float64 bit for
-- bit (value_int / 10^value_scale), the ADC count where (adc - baseline) / gain does, and the
-- raw Float64 otherwise (-0.0, 0.1 + 0.2, anything else). `value` is an ALIAS that picks the
-- stored form, so analysts keep using `value`. Measured in BENCHMARKS.md.
--
-- Every statement is idempotent, and no insert is lost while this runs (old processors may
-- still be writing): the view is switched to write both the old and the new columns first,
-- existing rows are copied into value_raw, and only then does `value` become the ALIAS.

ALTER TABLE chunk_ingest
    ADD COLUMN IF NOT EXISTS value_ints Array(Int64) AFTER adc_values,
    ADD COLUMN IF NOT EXISTS value_scale UInt8 AFTER value_ints,
    ADD COLUMN IF NOT EXISTS adc_gain Float64 AFTER value_scale,
    ADD COLUMN IF NOT EXISTS adc_baseline Int32 AFTER adc_gain;

-- New codecs apply to new parts and merges; existing parts are not rewritten.
ALTER TABLE samples
    ADD COLUMN IF NOT EXISTS value_codec Enum8('raw' = 0, 'decimal' = 1, 'adc' = 2) DEFAULT 'raw' COMMENT 'How value is stored: decimal (value_int / 10^value_scale), adc ((adc - adc_baseline) / adc_gain) or raw (value_raw)' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS value_int Int64 COMMENT 'decimal rows: the sample times 10^value_scale, an integer; 0 otherwise' CODEC(GCD, DoubleDelta, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS value_scale UInt8 COMMENT 'Decimal places of the chunk and lead (0..9), chosen by the processor' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS value_raw Float64 COMMENT 'raw rows: the sample as sent; 0 otherwise' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS adc_gain Float64 COMMENT 'Digital ECGs: the lead''s ADC counts per unit (as ecgs.adc_gain); 0 for physical ones' CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS adc_baseline Int32 COMMENT 'Digital ECGs: the lead''s ADC count of 0 units (as ecgs.adc_baseline); 0 for physical ones' CODEC(ZSTD(1)),
    MODIFY COLUMN tenant CODEC(ZSTD(1)),
    MODIFY COLUMN ecg_id CODEC(ZSTD(1)),
    MODIFY COLUMN lead CODEC(ZSTD(1)),
    MODIFY COLUMN sample_index CODEC(DoubleDelta, ZSTD(1)),
    MODIFY COLUMN ts CODEC(DoubleDelta, ZSTD(1)),
    MODIFY COLUMN adc CODEC(DoubleDelta, ZSTD(1));

-- Step 1: the view writes the new columns, and `value` while it is still a stored column.
-- value_ints[i] is 0 when an old processor sent no integers: such rows end up raw.
ALTER TABLE samples_mv MODIFY QUERY
WITH value_ints[i] AS sent_int
SELECT
    tenant,
    ecg_id,
    lead,
    first_sample + i - 1 AS sample_index,
    addMicroseconds(started_at, toInt64(round((first_sample + i - 1) * 1e6 / sample_rate_hz))) AS ts,
    value,
    seq,
    if(empty(adc_values), NULL, adc_values[i]) AS adc,
    multiIf(
        adc IS NOT NULL AND adc_gain > 0
            AND reinterpretAsUInt64((assumeNotNull(adc) - adc_baseline) / adc_gain) = reinterpretAsUInt64(value), 'adc',
        reinterpretAsUInt64(sent_int / intExp10(value_scale)) = reinterpretAsUInt64(value), 'decimal',
        'raw') AS value_codec,
    if(value_codec = 'decimal', sent_int, 0) AS value_int,
    value_scale,
    if(value_codec = 'raw', value, 0) AS value_raw,
    adc_gain,
    adc_baseline
FROM chunk_ingest
ARRAY JOIN values AS value, arrayEnumerate(values) AS i;

-- Step 2: rows written before step 1 (value_codec takes its default, raw) get value_raw.
-- Waits for the mutation, so step 3 cannot run first. On a second run it matches nothing.
ALTER TABLE samples
    UPDATE value_raw = value
    WHERE value_codec = 'raw' AND reinterpretAsUInt64(value_raw) != reinterpretAsUInt64(value)
    SETTINGS mutations_sync = 2;

-- Step 3: `value` becomes the ALIAS, in one ALTER (a second run drops and re-adds the ALIAS).
ALTER TABLE samples
    DROP COLUMN IF EXISTS value,
    ADD COLUMN value Float64 ALIAS multiIf(
        value_codec = 'decimal', value_int / intExp10(value_scale),
        value_codec = 'adc', (assumeNotNull(adc) - adc_baseline) / adc_gain,
        value_raw)
    COMMENT 'The sample exactly as sent (bit for bit, -0.0 included), in ecgs.units: computed from the stored form, see value_codec'
    AFTER ts;

-- Step 4: the view stops writing `value`.
ALTER TABLE samples_mv MODIFY QUERY
WITH value_ints[i] AS sent_int
SELECT
    tenant,
    ecg_id,
    lead,
    first_sample + i - 1 AS sample_index,
    addMicroseconds(started_at, toInt64(round((first_sample + i - 1) * 1e6 / sample_rate_hz))) AS ts,
    seq,
    if(empty(adc_values), NULL, adc_values[i]) AS adc,
    multiIf(
        adc IS NOT NULL AND adc_gain > 0
            AND reinterpretAsUInt64((assumeNotNull(adc) - adc_baseline) / adc_gain) = reinterpretAsUInt64(value), 'adc',
        reinterpretAsUInt64(sent_int / intExp10(value_scale)) = reinterpretAsUInt64(value), 'decimal',
        'raw') AS value_codec,
    if(value_codec = 'decimal', sent_int, 0) AS value_int,
    value_scale,
    if(value_codec = 'raw', value, 0) AS value_raw,
    adc_gain,
    adc_baseline
FROM chunk_ingest
ARRAY JOIN values AS value, arrayEnumerate(values) AS i;
