//! Table `ecgs` (migrations 1, 3, 12 and 13): one row per ECG, written by
//! the gateway when the ECG is opened, read by every service.
//!
//! The table is a `ReplacingMergeTree`: once the gateway knows the final seq
//! (a whole-signal upload, a chunk marked final, an end) it writes a second
//! row with `final_seq`, and until a merge both rows exist. Every
//! read here that wants one row per ECG orders by [`NEWEST_FIRST`], so the
//! final row wins, merged or not: [`latest`] for one ECG, and the list's
//! per-ECG pick (`crate::status`).

use std::collections::HashMap;

use clickhouse::{Client, Row};
use ecg_schemas::{Calibration, Units};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::insert::insert_all;

/// Table name.
pub const TABLE: &str = "ecgs";

/// The order in which an ECG's rows are read, the truth first: the row that
/// knows the final seq, then the newest.
pub(crate) const NEWEST_FIRST: &str = "ORDER BY isNull(final_seq), created_at DESC";

/// A row of `ecgs`: one ECG as the gateway registered it. Written by
/// ingest, read by ingest (chunk checks), the processor (owners) and the
/// query API (status, insights, samples).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EcgRow {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub device_id: String,
    pub sample_rate_hz: f64,
    pub leads: Vec<String>,
    /// Stored as its text, `mV` or `uV`.
    #[serde(with = "crate::units")]
    pub units: Units,
    /// Per lead, for digital ECGs: ADC counts per unit. Empty when physical.
    pub adc_gain: Vec<f64>,
    /// Per lead, for digital ECGs: the count of 0 units. Empty when physical.
    pub adc_baseline: Vec<i32>,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// Known when the whole signal came in one request.
    pub final_seq: Option<u32>,
    /// For an ECG made final by `PUT .../signal`: the digest of that body
    /// (migration 12), which tells an identical retry from another body.
    /// Empty otherwise.
    pub signal_digest: String,
}

impl EcgRow {
    /// The leads' calibrations, when the ECG's samples are ADC counts.
    pub fn calibration(&self) -> Option<Vec<Calibration>> {
        if self.adc_gain.is_empty() {
            return None;
        }
        Some(
            self.adc_gain
                .iter()
                .zip(&self.adc_baseline)
                .map(|(&gain, &baseline)| Calibration { gain, baseline })
                .collect(),
        )
    }
}

/// Registers an ECG (or, with `final_seq`, marks a whole upload final).
pub async fn insert(client: &Client, row: &EcgRow) -> clickhouse::error::Result<()> {
    insert_all::<EcgRow>(client, TABLE, std::slice::from_ref(row)).await
}

/// The ECG `id` of `tenant`, if it exists: its [`NEWEST_FIRST`] row.
/// Another tenant's ECG is indistinguishable from a missing one.
pub async fn latest(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Option<EcgRow>> {
    client
        .query(&format!(
            "SELECT ?fields FROM ecgs WHERE tenant = ? AND ecg_id = ? {NEWEST_FIRST} LIMIT 1"
        ))
        .bind(tenant)
        .bind(id.to_string())
        .fetch_optional()
        .await
}

/// The owners of `ids`: for failures that could not be read as far as
/// their tenant (an undecodable message keyed by an ECG id). Unknown ids are
/// absent from the map.
pub async fn owners(
    client: &Client,
    ids: &[Uuid],
) -> clickhouse::error::Result<HashMap<Uuid, String>> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<(String, String)> = client
        .query("SELECT DISTINCT toString(ecg_id), tenant FROM ecgs WHERE ecg_id IN ?")
        .bind(&ids)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, tenant)| Some((id.parse().ok()?, tenant)))
        .collect())
}

/// Whether the tenant has any ECG of this device.
pub async fn device_exists(
    client: &Client,
    tenant: &str,
    device: &str,
) -> clickhouse::error::Result<bool> {
    let n: u64 = client
        .query("SELECT count() FROM ecgs WHERE tenant = {t:String} AND device_id = {device:String}")
        .param("t", tenant)
        .param("device", device)
        .fetch_one()
        .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(units: Units, final_seq: Option<u32>) -> EcgRow {
        EcgRow {
            tenant: "demo".into(),
            ecg_id: Uuid::from_u128(7),
            device_id: "watch-17".into(),
            sample_rate_hz: 500.0,
            leads: vec!["I".into(), "II".into()],
            units,
            adc_gain: Vec::new(),
            adc_baseline: Vec::new(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            final_seq,
            signal_digest: String::new(),
        }
    }

    /// Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn units_are_stored_as_their_text_and_the_final_row_wins() {
        let client = crate::migrate::test_database("ecgs_rows").await.client();
        let streamed = row(Units::Microvolts, None);
        insert(&client, &streamed).await.unwrap();
        // The column holds what the gateway always wrote.
        let text: String = client
            .query("SELECT units FROM ecgs")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(text, "uV");
        let id = streamed.ecg_id;
        assert_eq!(latest(&client, "demo", id).await.unwrap(), Some(streamed));
        // A whole upload's final row wins, though written first or later.
        let whole = row(Units::Microvolts, Some(9));
        insert(&client, &whole).await.unwrap();
        insert(&client, &row(Units::Microvolts, None))
            .await
            .unwrap();
        assert_eq!(latest(&client, "demo", id).await.unwrap(), Some(whole));
        assert_eq!(latest(&client, "other", id).await.unwrap(), None);
        // Written by hand (an analyst, an old gateway): the same text reads back.
        client
            .query("INSERT INTO ecgs (tenant, ecg_id, device_id, sample_rate_hz, leads, units, started_at) VALUES ('demo', ?, 'd', 250, ['I'], 'mV', 0)")
            .bind(Uuid::from_u128(8).to_string())
            .execute()
            .await
            .unwrap();
        let found = latest(&client, "demo", Uuid::from_u128(8)).await.unwrap();
        assert_eq!(found.map(|r| r.units), Some(Units::Millivolts));
        let owners = owners(&client, &[id, Uuid::from_u128(9)]).await.unwrap();
        assert_eq!(owners, HashMap::from([(id, "demo".to_string())]));
    }
}
