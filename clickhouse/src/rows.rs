//! Rows of ecg-stream's tables that more than one service reads or writes,
//! typed once next to the SQL that defines them.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of table `ecgs`: one ECG as the gateway registered it. Written by
/// ingest, read by ingest (chunk checks) and query-api (status).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EcgRow {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub device_id: String,
    pub sample_rate_hz: f64,
    pub leads: Vec<String>,
    /// `mV` or `uV`.
    pub units: String,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// Known when the whole signal came in one request.
    pub final_seq: Option<u32>,
}
