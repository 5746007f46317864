//! View `beats` (migration 14): one row per beat that the processor found,
//! read from the `beats` arrays of the placed blocks. Read by the query API:
//! a page of one lead's beats ([`page`]) and every lead's beat indices for
//! heart rate and HRV ([`indices`]).

use clickhouse::{Client, Row};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// One beat of a page.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct Beat {
    /// The R peak's sample index in the lead.
    pub sample_index: u64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub ts: OffsetDateTime,
    /// Milliseconds since the lead's previous beat; `None` for its first.
    pub rr_ms: Option<f64>,
}

/// Which beats of a lead a page holds.
#[derive(Debug, Clone)]
pub struct PageOf<'a> {
    pub tenant: &'a str,
    pub id: Uuid,
    pub lead: &'a str,
    /// Sample indices `from..to`.
    pub from: u64,
    pub to: u64,
    /// Beats after this sample index only (where the previous page ended).
    pub after: Option<u64>,
    pub limit: u64,
}

/// One page of a lead's beats, by sample index: `limit` at most.
pub async fn page(client: &Client, p: &PageOf<'_>) -> clickhouse::error::Result<Vec<Beat>> {
    client
        .query(
            "SELECT sample_index, ts, rr_ms FROM beats
             WHERE tenant = {t:String} AND ecg_id = {id:UUID} AND lead = {lead:String}
               AND sample_index >= {from:UInt64} AND sample_index < {to:UInt64}
               AND ({after:Nullable(UInt64)} IS NULL OR sample_index > {after:Nullable(UInt64)})
             ORDER BY sample_index
             LIMIT {limit:UInt64}",
        )
        .param("t", p.tenant)
        .param("id", p.id.to_string())
        .param("lead", p.lead)
        .param("from", p.from)
        .param("to", p.to)
        .param("after", p.after)
        .param("limit", p.limit)
        .fetch_all()
        .await
}

/// Every lead's beats, as sample indices in order.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct LeadBeats {
    pub lead: String,
    pub beats: Vec<u64>,
}

/// The beats of every lead of the ECG that has any.
pub async fn indices(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Vec<LeadBeats>> {
    client
        .query(
            "SELECT lead, arraySort(groupArray(sample_index)) AS beats FROM beats
             WHERE tenant = {t:String} AND ecg_id = {id:UUID}
             GROUP BY lead
             ORDER BY lead",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_all()
        .await
}
