//! Reads across tables about where ECGs stand, for the query API: a page of
//! a tenant's ECGs with their status ([`list`]), the tenant's ECGs counted
//! by status ([`status_counts`]), and when one ECG last moved
//! ([`activity`]). Every query is filtered by tenant and bound.
//!
//! The status is computed in SQL because the list filters and pages on it.
//! It follows the query API's `routes::status::status_of` rule for rule (the
//! e2e test `query_list` checks both agree on every ECG): complete once the
//! written prefix passes the final seq, else failed if a chunk was refused
//! (kind `refused`: its seq is missing), else processing once the final seq
//! is known, else receiving. Each table
//! is read as its own module reads it: the newest `ecgs` row
//! ([`crate::ecgs`]), the newest `ecg_progress` row, each failure once
//! ([`crate::failed_chunks::FAILURE_KEY`]).

use clickhouse::{Client, Row};
use ecg_schemas::Units;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ecgs::NEWEST_FIRST;
use crate::failed_chunks::{FAILURE_KEY, MAKES_FAILED};

/// One ECG of a page, as the list query returns it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct ListRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub device_id: String,
    pub sample_rate_hz: f64,
    pub leads: Vec<String>,
    #[serde(with = "crate::units")]
    pub units: Units,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// The cursor's time key, exactly as compared in SQL.
    pub started_at_us: i64,
    pub status: String,
    /// 0 (the epoch) when nothing was processed yet.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub last_activity_at: OffsetDateTime,
    pub chunks: u64,
    pub samples: u64,
    pub failed: u64,
}

/// The list's filters, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub device_id: Option<String>,
    pub status: Option<&'static str>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    /// Where the previous page ended: its last `(started_at_us, ecg_id)`.
    pub after: Option<(i64, Uuid)>,
    pub limit: u64,
}

/// The tenant's ECGs, one row each (a whole upload's final row wins).
fn ecgs_cte(filters: &str) -> String {
    format!(
        "
e AS (SELECT ecg_id, device_id, sample_rate_hz, leads, units, started_at, final_seq
      FROM ecgs WHERE tenant = {{t:String}} AND {filters}
      {NEWEST_FIRST}
      LIMIT 1 BY ecg_id)"
    )
}

/// Per ECG of the tenant (in CTE `e`): status and counts, as columns `status`,
/// `chunks`, `samples`, `failed`, `last_activity_at`. Chunks and samples are
/// the placed ones (`blocks`); a waiting block counts as activity.
fn status_ctes() -> String {
    format!(
        "
p AS (SELECT ecg_id, 1 AS has_progress,
             argMax(next_seq, updated_at) AS next_seq,
             argMax(final_seq, updated_at) AS p_final
      FROM ecg_progress WHERE tenant = {{t:String}} AND ecg_id IN (SELECT ecg_id FROM e)
      GROUP BY ecg_id),
w AS (SELECT ecg_id, uniqExact(seq) AS chunks, sum(samples) AS samples,
             max(is_final) AS final_seen, maxIf(seq, is_final) AS w_final,
             max(processed_at) AS w_last
      FROM blocks WHERE tenant = {{t:String}} AND ecg_id IN (SELECT ecg_id FROM e)
      GROUP BY ecg_id),
q AS (SELECT ecg_id, max(processed_at) AS q_last
      FROM waiting_blocks WHERE tenant = {{t:String}} AND ecg_id IN (SELECT ecg_id FROM e)
      GROUP BY ecg_id),
f AS (SELECT ecg_id, count() AS failed, countIf({MAKES_FAILED}) AS refused,
             max(failed_at) AS f_last
      FROM (SELECT ecg_id, seq, kind, reason, failed_at FROM failed_chunks
            WHERE tenant = {{t:String}} AND ecg_id IN (SELECT ecg_id FROM e)
            ORDER BY failed_at DESC
            LIMIT 1 BY ecg_id, {FAILURE_KEY})
      GROUP BY ecg_id),
s AS (SELECT ecg_id, device_id, sample_rate_hz, leads, units, started_at, final_seq,
             w.chunks AS chunks, w.samples AS samples, f.failed AS failed,
             greatest(w.w_last, q.q_last, f.f_last) AS last_activity_at,
             coalesce(e.final_seq, p.p_final, if(w.final_seen, w.w_final, NULL)) AS known_final,
             if(p.has_progress = 1, p.next_seq, 0) AS written_next,
             multiIf(known_final IS NOT NULL AND written_next > known_final, 'complete',
                     f.refused > 0, 'failed',
                     known_final IS NOT NULL, 'processing',
                     'receiving') AS status
      FROM e LEFT JOIN p USING (ecg_id) LEFT JOIN w USING (ecg_id) LEFT JOIN q USING (ecg_id)
           LEFT JOIN f USING (ecg_id)
      SETTINGS join_use_nulls = 0)"
    )
}

/// One page of the tenant's ECGs, newest first; `limit + 1` rows at most so
/// the caller knows whether another page follows.
pub async fn list(
    client: &Client,
    tenant: &str,
    f: &ListFilter,
) -> clickhouse::error::Result<Vec<ListRow>> {
    // Optional filters are bound too: absent ones are bound as NULL and the
    // condition is written to be true for NULL.
    let ecgs = ecgs_cte(
        "({device:Nullable(String)} IS NULL OR device_id = {device:Nullable(String)})
         AND ({from:Nullable(Int64)} IS NULL OR started_at >= fromUnixTimestamp64Micro(assumeNotNull({from:Nullable(Int64)}), 'UTC'))
         AND ({to:Nullable(Int64)} IS NULL OR started_at < fromUnixTimestamp64Micro(assumeNotNull({to:Nullable(Int64)}), 'UTC'))",
    );
    let sql = [
        "WITH ",
        &ecgs,
        ",",
        &status_ctes(),
        "
         SELECT ecg_id, device_id, sample_rate_hz, leads, units, started_at,
                toUnixTimestamp64Micro(started_at) AS started_at_us, status,
                last_activity_at, chunks, samples, failed
         FROM s
         WHERE ({status:Nullable(String)} IS NULL OR status = {status:Nullable(String)})
           AND ({after_us:Nullable(Int64)} IS NULL
                OR (started_at_us, ecg_id) < (assumeNotNull({after_us:Nullable(Int64)}), {after_id:UUID}))
         ORDER BY started_at_us DESC, ecg_id DESC
         LIMIT {limit:UInt64}",
    ]
    .concat();
    client
        .query(&sql)
        .param("t", tenant)
        .param("device", f.device_id.as_deref())
        .param("from", f.from_us)
        .param("to", f.to_us)
        .param("status", f.status)
        .param("after_us", f.after.map(|(us, _)| us))
        .param(
            "after_id",
            f.after.map_or(Uuid::nil(), |(_, id)| id).to_string(),
        )
        .param("limit", f.limit + 1)
        .fetch_all()
        .await
}

/// The tenant's ECGs by status.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StatusCounts {
    pub receiving: u64,
    pub processing: u64,
    pub complete: u64,
    pub failed: u64,
}

/// The tenant's ECGs by status (the list's rules).
pub async fn status_counts(
    client: &Client,
    tenant: &str,
) -> clickhouse::error::Result<StatusCounts> {
    let sql = [
        "WITH ",
        &ecgs_cte("1"),
        ",",
        &status_ctes(),
        "
         SELECT countIf(status = 'receiving') AS receiving,
                countIf(status = 'processing') AS processing,
                countIf(status = 'complete') AS complete,
                countIf(status = 'failed') AS failed
         FROM s",
    ]
    .concat();
    client.query(&sql).param("t", tenant).fetch_one().await
}

/// When an ECG last moved, and which refused seqs it has: what the status
/// adds to the processor's own progress to count the chunks received. A
/// chunk stored while it waits for a gap is movement too.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Activity {
    /// The newest `processed_at` (placed or waiting) or `failed_at`; the
    /// epoch when none.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub last_at: OffsetDateTime,
    /// Distinct seqs of refused chunks (those whose seq could be read).
    pub failed_seqs: Vec<u32>,
}

/// The ECG's [`Activity`].
pub async fn activity(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Activity> {
    client
        .query(
            // Scalar subqueries are Nullable; max() of no rows is the epoch.
            "SELECT greatest(
                 assumeNotNull((SELECT max(processed_at) FROM blocks
                                WHERE tenant = {t:String} AND ecg_id = {id:UUID})),
                 assumeNotNull((SELECT max(processed_at) FROM waiting_blocks
                                WHERE tenant = {t:String} AND ecg_id = {id:UUID})),
                 assumeNotNull((SELECT max(failed_at) FROM failed_chunks
                                WHERE tenant = {t:String} AND ecg_id = {id:UUID}))) AS last_at,
             (SELECT groupUniqArray(assumeNotNull(seq)) FROM failed_chunks
              WHERE tenant = {t:String} AND ecg_id = {id:UUID} AND seq IS NOT NULL) AS failed_seqs",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_one()
        .await
}
