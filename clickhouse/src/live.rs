//! What a dashboard polls, across tables: the ECGs receiving data now
//! ([`active`]), the tenant's share of the pipeline ([`pipeline`]: rates,
//! refusals, ECGs active) and its throughput over the last minutes, step by
//! step ([`throughput`]). Times are bound from the query API's clock
//! in milliseconds since the epoch; every query is filtered by tenant.
//!
//! Rates count placed blocks (`blocks`); an ECG whose chunks only wait for
//! a gap (`waiting_blocks`) is still active, with its lag and waiting count
//! (the newest `ecg_progress` row). Refusals count each `failed_chunks`
//! message once. The ECGs by status are `crate::status::status_counts`.

use clickhouse::{Client, Row};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// An ECG written to (placed or waiting) since the cutoff.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct ActiveRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub device_id: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub last_at: OffsetDateTime,
    /// Samples placed since the cutoff, all leads together.
    pub recent_samples: u64,
    /// Of the newest written chunk, placed or waiting.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub newest_produced: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub newest_processed: OffsetDateTime,
    pub waiting: u64,
}

/// The tenant's pipeline figures since the cutoffs.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Figures {
    pub ingest_chunks: u64,
    pub ingest_samples: u64,
    pub processed_chunks: u64,
    pub processed_samples: u64,
    pub dead_total: u64,
    pub dead_last_hour: u64,
    pub active: u64,
}

/// Samples of one step of [`throughput`], all leads together.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Step {
    /// Steps before the newest: 0 is the one ending at the reference time.
    pub ago: u64,
    /// Accepted by the gateway in the step (Kafka timestamp).
    pub ingest_samples: u64,
    /// Written by the processor in the step.
    pub processed_samples: u64,
}

/// Most streams listed at once.
const MAX_ACTIVE: u64 = 1_000;

/// ECGs the processor wrote to at or after `since_ms`, newest first.
pub async fn active(
    client: &Client,
    tenant: &str,
    since_ms: i64,
) -> clickhouse::error::Result<Vec<ActiveRow>> {
    client
        .query(
            "SELECT ecg_id, device_id, last_at, recent_samples, newest_produced, newest_processed,
                    length(w.waiting) AS waiting
             FROM (
                 SELECT ecg_id, any(device_id) AS device_id, max(processed_at) AS last_at,
                        sumIf(samples, placed) AS recent_samples,
                        argMax(produced_at, (processed_at, seq)) AS newest_produced,
                        argMax(processed_at, (processed_at, seq)) AS newest_processed
                 FROM (
                     SELECT ecg_id, device_id, seq, samples, produced_at, processed_at,
                            true AS placed
                     FROM blocks
                     WHERE tenant = {t:String}
                       AND processed_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                     UNION ALL
                     SELECT ecg_id, device_id, seq, samples, produced_at, processed_at,
                            false AS placed
                     FROM waiting_blocks
                     WHERE tenant = {t:String}
                       AND processed_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                 )
                 GROUP BY ecg_id
             ) AS a
             LEFT JOIN (
                 SELECT ecg_id, argMax(waiting, updated_at) AS waiting
                 FROM ecg_progress WHERE tenant = {t:String}
                   AND updated_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                 GROUP BY ecg_id
             ) AS w USING (ecg_id)
             ORDER BY last_at DESC, ecg_id
             LIMIT {max:UInt64}",
        )
        .param("t", tenant)
        .param("since", since_ms)
        .param("max", MAX_ACTIVE)
        .fetch_all()
        .await
}

/// Rates since `window_ms`, refusals, and ECGs written since `active_ms`.
pub async fn pipeline(
    client: &Client,
    tenant: &str,
    window_ms: i64,
    hour_ms: i64,
    active_ms: i64,
) -> clickhouse::error::Result<Figures> {
    client
        .query(
            "WITH fromUnixTimestamp64Milli({w:Int64}, 'UTC') AS since,
                  (SELECT (uniqExact(ecg_id, seq), sum(samples)) FROM blocks
                   WHERE tenant = {t:String} AND produced_at >= since) AS ingested,
                  (SELECT (uniqExact(ecg_id, seq), sum(samples)) FROM blocks
                   WHERE tenant = {t:String} AND processed_at >= since) AS processed,
                  (SELECT (count(), countIf(failed_at >= fromUnixTimestamp64Milli({h:Int64}, 'UTC')),
                           countIf(produced_at >= since))
                   FROM (SELECT failed_at, produced_at FROM failed_chunks WHERE tenant = {t:String}
                         ORDER BY failed_at DESC
                         LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)) AS dead
             -- Scalar subqueries are Nullable: every figure is read as a plain UInt64.
             SELECT toUInt64(assumeNotNull(ingested.1 + dead.3)) AS ingest_chunks,
                    toUInt64(assumeNotNull(ingested.2)) AS ingest_samples,
                    toUInt64(assumeNotNull(processed.1)) AS processed_chunks,
                    toUInt64(assumeNotNull(processed.2)) AS processed_samples,
                    toUInt64(assumeNotNull(dead.1)) AS dead_total,
                    toUInt64(assumeNotNull(dead.2)) AS dead_last_hour,
                    toUInt64(assumeNotNull((SELECT uniqExact(ecg_id) FROM (
                        SELECT ecg_id FROM blocks
                        WHERE tenant = {t:String}
                          AND processed_at >= fromUnixTimestamp64Milli({a:Int64}, 'UTC')
                        UNION ALL
                        SELECT ecg_id FROM waiting_blocks
                        WHERE tenant = {t:String}
                          AND processed_at >= fromUnixTimestamp64Milli({a:Int64}, 'UTC'))))) AS active",
        )
        .param("t", tenant)
        .param("w", window_ms)
        .param("h", hour_ms)
        .param("a", active_ms)
        .fetch_one()
        .await
}

/// Samples accepted and written per step of `step_ms` over the `steps` steps
/// ending at `at_ms` (step `ago` is `(at - (ago + 1) step, at - ago step]`),
/// only the steps with samples. Counted like [`pipeline`]'s rates: placed
/// blocks, the ingest time known once the processor has handled a chunk. A
/// time after `at_ms` (another host's clock ahead) is in no step.
pub async fn throughput(
    client: &Client,
    tenant: &str,
    at_ms: i64,
    step_ms: i64,
    steps: u64,
) -> clickhouse::error::Result<Vec<Step>> {
    let span_ms = step_ms.saturating_mul(i64::try_from(steps).unwrap_or(i64::MAX));
    client
        .query(
            // One scan for both times: each block counts once at each.
            "SELECT toUInt64(intDiv({at:Int64} - toUnixTimestamp64Milli(ts), {step:Int64})) AS ago,
                    sumIf(samples, kind = 0) AS ingest_samples,
                    sumIf(samples, kind = 1) AS processed_samples
             FROM blocks
             ARRAY JOIN [produced_at, processed_at] AS ts, [0, 1] AS kind
             WHERE tenant = {t:String}
               AND toUnixTimestamp64Milli(ts) > {since:Int64}
               AND toUnixTimestamp64Milli(ts) <= {at:Int64}
             GROUP BY ago
             ORDER BY ago",
        )
        .param("t", tenant)
        .param("at", at_ms)
        .param("step", step_ms)
        .param("since", at_ms.saturating_sub(span_ms))
        .fetch_all()
        .await
}
