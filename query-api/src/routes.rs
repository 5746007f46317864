//! Status and insights of an ECG, for its tenant only.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_schemas::api::{EcgStatus, Insights, LeadInsight};
use ecg_schemas::{Status, Units};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::store::Progress;
use ecg_clickhouse::EcgRow;

/// `GET /v1/ecgs/{id}`.
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant, ecg_id = %id))]
pub async fn ecg_status(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    Path(id): Path<Uuid>,
) -> Result<Json<EcgStatus>, ApiError> {
    let tenant = &auth.0.tenant;
    let ecg = state
        .store
        .ecg(tenant, id)
        .await?
        .ok_or(ApiError::NotFound(id))?;
    let progress = state.store.progress(tenant, id).await?;
    let (status, final_seq) = status_of(&ecg, &progress);
    let adc = ecg
        .calibration()
        .map(|c| ecg.leads.iter().cloned().zip(c).collect());
    Ok(Json(EcgStatus {
        id,
        device_id: ecg.device_id,
        status,
        sample_rate_hz: ecg.sample_rate_hz,
        leads: ecg.leads,
        units: Units::parse(&ecg.units).unwrap_or_default(),
        adc,
        started_at: ecg.started_at,
        chunks_processed: progress.chunks,
        samples_processed: progress.samples,
        final_seq,
    }))
}

/// `GET /v1/ecgs/{id}/insights`.
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant, ecg_id = %id))]
pub async fn ecg_insights(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    Path(id): Path<Uuid>,
) -> Result<Json<Insights>, ApiError> {
    let tenant = &auth.0.tenant;
    let ecg = state
        .store
        .ecg(tenant, id)
        .await?
        .ok_or(ApiError::NotFound(id))?;
    let (progress, totals) = tokio::try_join!(
        state.store.progress(tenant, id),
        state.store.lead_totals(tenant, id)
    )?;
    let (status, _) = status_of(&ecg, &progress);
    // Every declared lead appears, with zeros until its first chunk lands.
    let mut leads: BTreeMap<String, LeadInsight> = ecg
        .leads
        .iter()
        .map(|l| {
            let insight = LeadInsight {
                samples: 0,
                zero_crossings: 0,
                zero_crossing_rate_hz: 0.0,
            };
            (l.clone(), insight)
        })
        .collect();
    for t in totals {
        let rate = if t.samples == 0 {
            0.0
        } else {
            t.zero_crossings as f64 * ecg.sample_rate_hz / t.samples as f64
        };
        leads.insert(
            t.lead,
            LeadInsight {
                samples: t.samples,
                zero_crossings: t.zero_crossings,
                zero_crossing_rate_hz: rate,
            },
        );
    }
    Ok(Json(Insights {
        id,
        status,
        total_zero_crossings: leads.values().map(|l| l.zero_crossings).sum(),
        leads,
    }))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// An ECG's status and final seq (if known) from its registry row and what
/// the processor has written. The processor writes chunks in seq order with
/// no gaps, so `chunks == final_seq + 1` means every chunk is in.
fn status_of(ecg: &EcgRow, p: &Progress) -> (Status, Option<u32>) {
    let final_seq = ecg.final_seq.or(p.final_seen.then_some(p.final_seq));
    let status = if p.failed > 0 {
        Status::Failed
    } else {
        match final_seq {
            Some(f) if p.chunks == u64::from(f) + 1 => Status::Complete,
            Some(_) => Status::Processing,
            None => Status::Receiving,
        }
    };
    (status, final_seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn ecg(final_seq: Option<u32>) -> EcgRow {
        EcgRow {
            tenant: "demo".into(),
            ecg_id: Uuid::nil(),
            device_id: "d".into(),
            sample_rate_hz: 500.0,
            leads: vec!["I".into()],
            units: "mV".into(),
            adc_gain: Vec::new(),
            adc_baseline: Vec::new(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            final_seq,
        }
    }

    fn progress(chunks: u64, final_seen: bool, failed: u64) -> Progress {
        Progress {
            chunks,
            samples: chunks * 10,
            final_seen,
            final_seq: chunks.saturating_sub(1) as u32,
            failed,
        }
    }

    #[test]
    fn streamed_ecg_is_receiving_until_its_final_chunk_is_written() {
        assert_eq!(
            status_of(&ecg(None), &progress(3, false, 0)).0,
            Status::Receiving
        );
        assert_eq!(
            status_of(&ecg(None), &progress(4, true, 0)),
            (Status::Complete, Some(3))
        );
    }

    #[test]
    fn whole_upload_is_processing_until_every_chunk_is_written() {
        assert_eq!(
            status_of(&ecg(Some(4)), &progress(2, false, 0)).0,
            Status::Processing
        );
        assert_eq!(
            status_of(&ecg(Some(4)), &progress(5, true, 0)).0,
            Status::Complete
        );
    }

    #[test]
    fn a_refused_chunk_fails_the_ecg() {
        assert_eq!(
            status_of(&ecg(Some(4)), &progress(5, true, 1)).0,
            Status::Failed
        );
    }
}
