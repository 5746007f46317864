//! `GET /v1/ecgs/{id}/insights`: per-lead totals (the processor's running
//! totals through each lead's last placed block) and, with `?window=`, exact
//! crossings per time window counted over the blocks (see `store::windows`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use ecg_schemas::api::{
    ErrorBody, Insights, LeadInsight, SignalQuality, Window, WindowHeart, Windows,
};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::heart;
use crate::params::{self, Params};
use crate::routes::status::{position, status_of};
use crate::store;
use ecg_clickhouse::blocks::{self, LeadTotals};
use ecg_clickhouse::{EcgRow, beats, failed_chunks, progress};

/// The window lengths offered, in seconds.
pub const WINDOWS: &[(&str, u64)] = &[("1s", 1), ("10s", 10), ("1m", 60), ("5m", 300)];
/// Windows at least this long also carry each lead's signal quality, heart
/// rate and HRV.
const HEART_WINDOW_S: u64 = 60;
/// The windows a lead's quality and heart rate are judged on, seconds.
const QUALITY_WINDOW_S: u64 = 300;
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
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_insights(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
    RawQuery(query): RawQuery,
) -> Result<Json<Insights>, ApiError> {
    let (tenant, id) = (&caller.tenant, ecg.ecg_id);
    let q = Params::parse(query.as_deref(), &["window", "from", "to"])?;
    let window = q.choice("window", WINDOWS)?;
    let (from, to) = (q.time("from")?, q.time("to")?);
    params::check_range(from, to)?;
    if window.is_none() && (from.is_some() || to.is_some()) {
        return Err(ApiError::param("window", "from and to need a window"));
    }
    let ch = &state.clickhouse;
    let (written, progress, failed, totals, beats) = tokio::try_join!(
        blocks::written(ch, tenant, id),
        progress::newest(ch, tenant, id),
        failed_chunks::refused(ch, tenant, id),
        blocks::lead_totals(ch, tenant, id),
        beats::indices(ch, tenant, id)
    )?;
    let status = status_of(&position(&ecg, &written, progress), failed);
    let end = totals.iter().map(|t| t.samples).max().unwrap_or(0);
    let windows = match window {
        None => None,
        Some((name, secs)) => {
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
    // Each lead's quality over 5-minute windows, and its heart rate from
    // the good ones.
    let per_five = QUALITY_WINDOW_S as f64 * ecg.sample_rate_hz;
    let stats = blocks::window_stats(ch, tenant, id, per_five, (0, end.max(1))).await?;
    let judged = heart::judge(stats, &beats, per_five, ecg.sample_rate_hz, ecg.units);
    let mut leads = lead_insights(&ecg, totals);
    heart::fill_leads(&mut leads, &beats, &judged, ecg.sample_rate_hz);
    let best = heart::best_lead(&ecg.leads, &leads);
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
                quality: None,
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
                quality: None,
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
        let judged = heart::judge(stats, beats, per_window, ecg.sample_rate_hz, ecg.units);
        for ((lead, window), j) in judged {
            let Some(w) = window
                .checked_sub(range.start)
                .and_then(|i| series.get_mut(i as usize))
            else {
                continue;
            };
            let heart_rate = (j.quality == SignalQuality::Good)
                .then(|| heart::heart_rate(&j.beats, ecg.sample_rate_hz))
                .flatten();
            w.heart.insert(
                lead,
                WindowHeart {
                    quality: j.quality,
                    beats: j.beats.len() as u64,
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
