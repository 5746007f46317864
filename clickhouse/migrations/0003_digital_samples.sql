-- Digital (ADC) samples, stored losslessly: the counts as sent, each lead's gain and
-- baseline on the ECG, and the physical value derived as (adc - baseline) / gain.
ALTER TABLE ecgs
    ADD COLUMN IF NOT EXISTS adc_gain Array(Float64) COMMENT 'Per lead, in leads order: ADC counts per unit; empty for physical ECGs' AFTER units,
    ADD COLUMN IF NOT EXISTS adc_baseline Array(Int32) COMMENT 'Per lead, in leads order: the ADC count of 0 units; empty for physical ECGs' AFTER adc_gain;

ALTER TABLE chunk_ingest ADD COLUMN IF NOT EXISTS adc_values Array(Int32) AFTER values;

ALTER TABLE samples
    ADD COLUMN IF NOT EXISTS adc Nullable(Int32) COMMENT 'The ADC count as sent, for digital ECGs (value = (adc - baseline) / gain); NULL for physical ones';

-- MODIFY QUERY swaps the view's query atomically: no insert can slip between
-- an old and a new view.
ALTER TABLE samples_mv MODIFY QUERY
SELECT
    tenant,
    ecg_id,
    lead,
    first_sample + i - 1 AS sample_index,
    addMicroseconds(started_at, toInt64(round((first_sample + i - 1) * 1e6 / sample_rate_hz))) AS ts,
    value,
    seq,
    if(empty(adc_values), NULL, adc_values[i]) AS adc
FROM chunk_ingest
ARRAY JOIN values AS value, arrayEnumerate(values) AS i;
