//! `GET /v1/ecgs/{id}`: where an ECG's chunks stand, for its tenant only.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use ecg_clickhouse::blocks::{self, Written};
use ecg_clickhouse::progress::{self, Progress};
use ecg_clickhouse::{EcgRow, failed_chunks, status};
use ecg_schemas::Status;
use ecg_schemas::api::{EcgStatus, ErrorBody, FailedChunk, FailedKind};
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::gaps;

/// How many missing and waiting seqs a status lists; the counts are exact.
const LISTED_SEQS: usize = 1000;
/// How many refused chunks a status lists; the count is exact.
const LISTED_FAILURES: u32 = 100;

/// `GET /v1/ecgs/{id}`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}",
    tag = "ecgs",
    summary = "An ECG's status: chunks received, processed, missing, waiting and refused",
    params(("id" = uuid::Uuid, Path, description = "The ECG id")),
    responses(
        (status = 200, description = "The ECG's status", body = EcgStatus),
        (status = 400, description = "Malformed id (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_status(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
) -> Result<Json<EcgStatus>, ApiError> {
    let (tenant, id) = (&caller.tenant, ecg.ecg_id);
    let ch = &state.clickhouse;
    let (written, progress, failed, activity, stored_waiting) = tokio::try_join!(
        blocks::written(ch, tenant, id),
        progress::newest(ch, tenant, id),
        failed_chunks::listed(ch, tenant, id, LISTED_FAILURES),
        status::activity(ch, tenant, id),
        blocks::waiting(ch, tenant, id)
    )?;
    // The chunks stored in waiting_blocks beyond the placed prefix: a seq
    // placed a moment ago can still have its waiting rows, and counts once.
    let stored_waiting: Vec<_> = stored_waiting
        .into_iter()
        .filter(|w| u64::from(w.seq) >= written.chunks)
        .collect();
    let waiting_samples: u64 = stored_waiting.iter().map(|w| w.samples).sum();
    let position = position(&ecg, &written, progress);
    let failed_count = failed.first().map_or(0, |f| f.total);
    // A conflicting resend leaves the stored chunk valid: not a failure.
    let status = status_of(&position, failed.first().map_or(0, |f| f.refused));
    let missing = gaps::missing(
        position.next_seq,
        &position.waiting,
        position.final_seq,
        LISTED_SEQS,
    );
    // Received: the placed prefix (blocks is gapless), plus the seqs waiting
    // beyond it (stored, or known to the processor) and the refused ones not
    // placed since.
    let beyond: BTreeSet<u32> = position
        .waiting
        .iter()
        .copied()
        .chain(stored_waiting.iter().map(|w| w.seq))
        .chain(activity.failed_seqs.iter().copied())
        .filter(|&s| u64::from(s) >= written.chunks)
        .collect();
    let chunks_received = written.chunks + beyond.len() as u64;
    let last_activity_at =
        (activity.last_at > OffsetDateTime::UNIX_EPOCH).then_some(activity.last_at);
    let adc = ecg
        .calibration()
        .map(|c| ecg.leads.iter().cloned().zip(c).collect());
    Ok(Json(EcgStatus {
        id,
        device_id: ecg.device_id,
        status,
        sample_rate_hz: ecg.sample_rate_hz,
        leads: ecg.leads,
        units: ecg.units,
        adc,
        started_at: ecg.started_at,
        chunks_processed: written.chunks,
        samples_processed: written.samples,
        chunks_received,
        // A refused chunk's size is unknown (it may not have been readable).
        samples_received: written.samples + waiting_samples,
        last_activity_at,
        final_seq: position.final_seq,
        next_seq: position.next_seq,
        missing_seqs: missing.seqs,
        missing_count: missing.count,
        waiting_count: position.waiting.len() as u64,
        waiting_seqs: position.waiting.into_iter().take(LISTED_SEQS).collect(),
        failed_chunks: failed
            .into_iter()
            .map(|f| FailedChunk {
                seq: f.seq,
                kind: match f.kind.as_str() {
                    "conflict" => FailedKind::Conflict,
                    "ignored" => FailedKind::Ignored,
                    _ => FailedKind::Refused,
                },
                reason: f.reason,
                failed_at: f.failed_at,
            })
            .collect(),
        failed_chunks_count: failed_count,
    }))
}

/// Where an ECG's chunks stand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    /// Chunks `0..next_seq` are written.
    pub(crate) next_seq: u32,
    /// Received seqs held back for a gap, ascending, all `>= next_seq`.
    pub(crate) waiting: Vec<u32>,
    pub(crate) final_seq: Option<u32>,
}

/// Combines the registry row, the processor's `ecg_progress` row (absent
/// until the processor has written one for this ECG) and `blocks`.
pub(crate) fn position(ecg: &EcgRow, written: &Written, progress: Option<Progress>) -> Position {
    // The processor writes ecg_progress only after a batch's insert has
    // returned, so every sample of the chunks below its next seq can be
    // read. `blocks` alone is not enough: a large or multi-month batch
    // lands as several parts, visible one by one while the insert runs. So
    // without a progress row nothing counts as written yet; ECGs processed
    // before ecg_progress existed got theirs from migration 0006.
    let seen_final = written.final_seen.then_some(written.final_seq);
    let Some(p) = progress else {
        return Position {
            next_seq: 0,
            waiting: Vec::new(),
            final_seq: ecg.final_seq.or(seen_final),
        };
    };
    let next_seq = p.next_seq;
    Position {
        next_seq,
        waiting: p.waiting.into_iter().filter(|&s| s >= next_seq).collect(),
        // The registry knows the final seq of a whole upload from the start.
        final_seq: ecg.final_seq.or(p.final_seq).or(seen_final),
    }
}

/// An ECG's status. Complete wins over failed: a client that resent a
/// refused chunk gets its ECG completed, and the old refusal stays listed.
pub(crate) fn status_of(p: &Position, failed: u64) -> Status {
    match p.final_seq {
        Some(f) if p.next_seq > f => Status::Complete,
        _ if failed > 0 => Status::Failed,
        Some(_) => Status::Processing,
        None => Status::Receiving,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_schemas::Units;
    use uuid::Uuid;

    fn ecg(final_seq: Option<u32>) -> EcgRow {
        EcgRow {
            tenant: "demo".into(),
            ecg_id: Uuid::nil(),
            device_id: "d".into(),
            sample_rate_hz: 500.0,
            leads: vec!["I".into()],
            units: Units::Millivolts,
            adc_gain: Vec::new(),
            adc_baseline: Vec::new(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            final_seq,
            signal_digest: String::new(),
        }
    }

    /// `chunks` placed per blocks, the last of them final or not.
    fn written(chunks: u64, final_seen: bool) -> Written {
        Written {
            chunks,
            samples: chunks * 10,
            final_seen,
            final_seq: chunks.saturating_sub(1) as u32,
        }
    }

    fn progress(next_seq: u32, waiting: &[u32], final_seq: Option<u32>) -> Option<Progress> {
        Some(Progress {
            tenant: "demo".into(),
            ecg_id: Uuid::nil(),
            next_seq,
            waiting: waiting.to_vec(),
            waiting_samples: waiting.len() as u64 * 10,
            final_seq,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn status(ecg_final: Option<u32>, w: Written, p: Option<Progress>, failed: u64) -> Status {
        status_of(&position(&ecg(ecg_final), &w, p), failed)
    }

    #[test]
    fn streamed_ecg_is_receiving_until_its_final_chunk_is_written() {
        assert_eq!(status(None, written(3, false), None, 0), Status::Receiving);
        let p = progress(4, &[], Some(3));
        assert_eq!(status(None, written(4, true), p, 0), Status::Complete);
        assert_eq!(
            position(&ecg(None), &written(4, true), None).final_seq,
            Some(3)
        );
    }

    #[test]
    fn whole_upload_is_processing_until_every_chunk_is_written() {
        assert_eq!(
            status(Some(4), written(2, false), None, 0),
            Status::Processing
        );
        let p = progress(5, &[], None);
        assert_eq!(status(Some(4), written(5, true), p, 0), Status::Complete);
    }

    #[test]
    fn the_final_seq_waiting_in_the_processor_is_not_complete() {
        // The final chunk arrived but chunk 2 did not: processing, not done.
        let p = progress(2, &[3, 4], Some(4));
        assert_eq!(status(None, written(2, false), p, 0), Status::Processing);
    }

    #[test]
    fn a_refused_chunk_fails_an_incomplete_ecg() {
        assert_eq!(status(Some(4), written(2, false), None, 1), Status::Failed);
        assert_eq!(status(None, written(2, false), None, 1), Status::Failed);
    }

    #[test]
    fn a_refused_chunk_resent_lets_the_ecg_complete() {
        // Every seq 0..=4 is written although one was refused once.
        let p = progress(5, &[], None);
        assert_eq!(status(Some(4), written(5, true), p, 1), Status::Complete);
        let p = progress(5, &[], Some(4));
        assert_eq!(status(None, written(5, true), p, 1), Status::Complete);
    }

    #[test]
    fn without_a_progress_row_nothing_is_written_yet() {
        // Every chunk is in blocks, the insert has not returned.
        let at = position(&ecg(None), &written(3, true), None);
        assert_eq!(
            at,
            Position {
                next_seq: 0,
                waiting: vec![],
                final_seq: Some(2)
            }
        );
        assert_eq!(status_of(&at, 0), Status::Processing);
    }

    #[test]
    fn the_progress_row_gives_waiting_and_final_and_the_registry_wins_the_final() {
        let p = progress(3, &[5, 7], Some(9));
        assert_eq!(
            position(&ecg(None), &written(3, false), p.clone()),
            Position {
                next_seq: 3,
                waiting: vec![5, 7],
                final_seq: Some(9)
            }
        );
        assert_eq!(
            position(&ecg(Some(8)), &written(3, false), p).final_seq,
            Some(8)
        );
    }

    #[test]
    fn a_progress_row_behind_blocks_wins_until_the_insert_is_done() {
        // Chunks 3..=5 are in blocks, but the insert that carries them
        // has not returned (its samples may not be visible yet): not complete.
        let p = progress(3, &[4, 5], Some(5));
        let at = position(&ecg(None), &written(6, true), p);
        assert_eq!(
            at,
            Position {
                next_seq: 3,
                waiting: vec![4, 5],
                final_seq: Some(5)
            }
        );
        assert_eq!(status_of(&at, 0), Status::Processing);
    }
}
