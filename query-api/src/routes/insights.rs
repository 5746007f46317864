//! `GET /v1/ecgs/{id}/insights`: per-lead totals (the processor's running
//! totals through each lead's last placed block) and, with `?window=`, exact
//! crossings per time window counted over the blocks (see `store::windows`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_schemas::api::{
    ErrorBody, HeartRate, Insights, LeadInsight, SignalQuality, Window, WindowHeart, Windows,
};
use ecg_signal::{hrv, quality};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::routes::status::{position, status_of};
use crate::store;
use ecg_clickhouse::blocks::{self, LeadTotals};
use ecg_clickhouse::{EcgRow, beats, ecgs, failed_chunks, progress};

/// The window lengths offered, in seconds.
pub const WINDOWS: &[(&str, u64)] = &[("1s", 1), ("10s", 10), ("1m", 60), ("5m", 300)];
/// Windows at least this long also carry each lead's signal quality, heart
/// rate and HRV.
const HEART_WINDOW_S: u64 = 60;
/// At most this many windows per answer.
const MAX_WINDOWS: u64 = 100_000;

/// `GET /v1/ecgs/{id}/insights`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}/insights",
    tag = "ecgs",
    summary = "Per-lead zero crossings, beats, heart rate and HRV; crossings per time window",
    description = "Totals per lead (samples, zero crossings, zero-crossing rate, beats, and once two normal RR intervals are known the heart rate, SDNN and RMSSD of its NN intervals), and the ECG's heart rate from its most regular lead. With `window`, also the exact crossings of every window of that length from the ECG's first sample (or within `from`..`to`), empty windows included; over the whole ECG each lead's windows sum to its total. A crossing belongs to the window of the sample where the new sign is seen.",
    params(
        ("id" = uuid::Uuid, Path, description = "The ECG id"),
        ("window" = Option<crate::params::WindowName>, Query, description = "Window length: 1s, 10s, 1m or 5m; windows of 1m and 5m also carry each lead's signal quality, beats, and heart rate and HRV where the quality is good"),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339; windows from the one holding this time (with `window`)"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive (with `window`)"),
    ),
    responses(
        (status = 200, description = "The ECG's insights", body = Insights),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant, ecg_id = %raw_id))]
pub async fn ecg_insights(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    Path(raw_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Insights>, ApiError> {
    let id = params::ecg_id(&raw_id)?;
    let q = Params::parse(query.as_deref(), &["window", "from", "to"])?;
    let window = q.choice("window", WINDOWS)?;
    let (from, to) = (q.time("from")?, q.time("to")?);
    params::check_range(from, to)?;
    if window.is_none() && (from.is_some() || to.is_some()) {
        return Err(ApiError::param("window", "from and to need a window"));
    }
    let tenant = &auth.0.tenant;
    let ch = &state.clickhouse;
    let ecg = ecgs::latest(ch, tenant, id)
        .await?
        .ok_or(ApiError::NotFound(id))?;
    let (written, progress, failed, totals, beats) = tokio::try_join!(
        blocks::written(ch, tenant, id),
        progress::newest(ch, tenant, id),
        failed_chunks::refused(ch, tenant, id),
        blocks::lead_totals(ch, tenant, id),
        beats::indices(ch, tenant, id)
    )?;
    let status = status_of(&position(&ecg, &written, progress), failed);
    let windows = match window {
        None => None,
        Some((name, secs)) => {
            let end = totals.iter().map(|t| t.samples).max().unwrap_or(0);
            let from = from.map_or(0, |t| {
                params::index_at(t, ecg.started_at, ecg.sample_rate_hz)
            });
            let to = to
                .map_or(end, |t| {
                    params::index_at(t, ecg.started_at, ecg.sample_rate_hz)
                })
                .min(end);
            Some(windows(&state, tenant, id, &ecg, (name, secs), from, to, &beats).await?)
        }
    };
    let mut leads = lead_insights(&ecg, totals);
    for b in beats {
        if let Some(lead) = leads.get_mut(&b.lead) {
            lead.beats = b.beats.len() as u64;
            lead.heart_rate = heart_rate(&b.beats, ecg.sample_rate_hz);
        }
    }
    let best = best_lead(&ecg.leads, &leads);
    Ok(Json(Insights {
        id,
        status,
        total_zero_crossings: leads.values().map(|l| l.zero_crossings).sum(),
        heart_rate_bpm: best.and_then(|l| Some(leads.get(l)?.heart_rate.as_ref()?.heart_rate_bpm)),
        heart_rate_lead: best.cloned(),
        leads,
        windows,
    }))
}

/// Heart rate and HRV of a lead's beats (`ecg_signal::hrv`).
fn heart_rate(beats: &[u64], rate_hz: f64) -> Option<HeartRate> {
    let h = hrv::hrv(beats, rate_hz)?;
    Some(HeartRate {
        rr_intervals: h.intervals as u64,
        normal_intervals: h.normal as u64,
        heart_rate_bpm: h.mean_hr_bpm,
        sdnn_ms: h.sdnn_ms,
        rmssd_ms: h.rmssd_ms,
    })
}

/// The lead whose heart rate the ECG reports: the largest share of NN
/// intervals (the most regular RR, the fewest artefacts), then the most
/// beats, then the first declared.
fn best_lead<'a>(
    declared: &'a [String],
    leads: &BTreeMap<String, LeadInsight>,
) -> Option<&'a String> {
    let score = |l: &String| {
        let h = leads.get(l)?.heart_rate.as_ref()?;
        let share = h.normal_intervals as f64 / h.rr_intervals.max(1) as f64;
        Some((share, h.rr_intervals))
    };
    let mut best: Option<(&String, (f64, u64))> = None;
    for l in declared {
        if let Some(s) = score(l) {
            if best.is_none_or(|(_, b)| s.0 > b.0 || (s.0 == b.0 && s.1 > b.1)) {
                best = Some((l, s));
            }
        }
    }
    best.map(|(l, _)| l)
}

/// Every declared lead, with zeros until its first chunk lands.
fn lead_insights(ecg: &EcgRow, totals: Vec<LeadTotals>) -> BTreeMap<String, LeadInsight> {
    let mut leads: BTreeMap<String, LeadInsight> = ecg
        .leads
        .iter()
        .map(|l| {
            let insight = LeadInsight {
                samples: 0,
                zero_crossings: 0,
                zero_crossing_rate_hz: 0.0,
                beats: 0,
                heart_rate: None,
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
                beats: 0,
                heart_rate: None,
            },
        );
    }
    leads
}

/// The windows holding samples `from..to`, each with every lead's count,
/// and for windows of a minute or more each lead's quality and heart rate.
#[allow(clippy::too_many_arguments)]
async fn windows(
    state: &AppState,
    tenant: &str,
    id: Uuid,
    ecg: &EcgRow,
    (name, secs): (&'static str, u64),
    from: u64,
    to: u64,
    beats: &[beats::LeadBeats],
) -> Result<Windows, ApiError> {
    let per_window = secs as f64 * ecg.sample_rate_hz;
    let window_of = |index: u64| (index as f64 / per_window).floor() as u64;
    let range = if from < to {
        window_of(from)..window_of(to - 1) + 1
    } else {
        0..0
    };
    if range.end - range.start > MAX_WINDOWS {
        return Err(ApiError::over(
            "window",
            format!("at most {MAX_WINDOWS} windows per request: use a longer window or from/to"),
            MAX_WINDOWS,
        ));
    }
    let counts = if range.is_empty() {
        Vec::new()
    } else {
        store::crossing_windows(&state.clickhouse, tenant, id, per_window, from, to).await?
    };
    let zeros: BTreeMap<String, u64> = ecg.leads.iter().map(|l| (l.clone(), 0)).collect();
    let mut series: Vec<Window> = range
        .clone()
        .map(|k| {
            let start_s = (k * secs) as f64;
            Window {
                start: params::time_of(
                    (start_s * ecg.sample_rate_hz) as u64,
                    ecg.started_at,
                    ecg.sample_rate_hz,
                ),
                start_s,
                leads: zeros.clone(),
                heart: BTreeMap::new(),
            }
        })
        .collect();
    if secs >= HEART_WINDOW_S && !range.is_empty() {
        // Whole windows: the blocks starting in them.
        let start = (range.start as f64 * per_window).ceil() as u64;
        let end = (range.end as f64 * per_window).ceil() as u64;
        let stats =
            blocks::window_stats(&state.clickhouse, tenant, id, per_window, (start, end)).await?;
        let per_mv = match ecg.units {
            ecg_schemas::Units::Microvolts => 1000.0,
            ecg_schemas::Units::Millivolts => 1.0,
        };
        for s in stats {
            let Some(w) = s
                .window
                .checked_sub(range.start)
                .and_then(|i| series.get_mut(i as usize))
            else {
                continue;
            };
            let in_window: Vec<u64> = beats
                .iter()
                .find(|b| b.lead == s.lead)
                .map(|b| {
                    b.beats
                        .iter()
                        .copied()
                        .filter(|&i| window_of(i) == s.window)
                        .collect()
                })
                .unwrap_or_default();
            let stats = quality::WindowStats {
                samples: s.n,
                min: s.lo,
                max: s.hi,
                at_extremes: s.at_extremes,
            };
            let verdict = quality::verdict(&stats, &in_window, ecg.sample_rate_hz, per_mv);
            let quality = match verdict {
                quality::Quality::Good => SignalQuality::Good,
                quality::Quality::Flat => SignalQuality::Flat,
                quality::Quality::Saturated => SignalQuality::Saturated,
                quality::Quality::Noisy => SignalQuality::Noisy,
            };
            let heart_rate = (verdict == quality::Quality::Good)
                .then(|| heart_rate(&in_window, ecg.sample_rate_hz))
                .flatten();
            w.heart.insert(
                s.lead,
                WindowHeart {
                    quality,
                    beats: in_window.len() as u64,
                    heart_rate,
                },
            );
        }
    }
    for c in counts {
        let slot = c
            .window
            .checked_sub(range.start)
            .and_then(|i| series.get_mut(i as usize));
        if let Some(w) = slot {
            *w.leads.entry(c.lead).or_default() += c.crossings;
        }
    }
    Ok(Windows {
        window: name.into(),
        window_s: secs as f64,
        series,
    })
}
