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
    /// Per lead, for digital ECGs: ADC counts per unit. Empty when physical.
    pub adc_gain: Vec<f64>,
    /// Per lead, for digital ECGs: the count of 0 units. Empty when physical.
    pub adc_baseline: Vec<i32>,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// Known when the whole signal came in one request.
    pub final_seq: Option<u32>,
}

impl EcgRow {
    /// The leads' calibrations, when the ECG's samples are ADC counts.
    pub fn calibration(&self) -> Option<Vec<ecg_schemas::Calibration>> {
        if self.adc_gain.is_empty() {
            return None;
        }
        Some(
            self.adc_gain
                .iter()
                .zip(&self.adc_baseline)
                .map(|(&gain, &baseline)| ecg_schemas::Calibration { gain, baseline })
                .collect(),
        )
    }
}
