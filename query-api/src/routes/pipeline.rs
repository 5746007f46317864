//! `GET /v1/pipeline`: the caller's share of the pipeline (rates, refusals,
//! ECGs by status, active streams) and the processor's consumer lag, a
//! number over every tenant that says nothing about any one of them.

use axum::Json;
use axum::extract::{RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_clickhouse::{live, status};
use ecg_schemas::api::{
    ConsumerLag, DeadLettered, ErrorBody, Pipeline, Rate, StatusCounts, Throughput,
};
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::streams::millis;

/// The throughput's steps: the last ten minutes in steps of ten seconds,
/// the 60 points of the dashboard's sparkline.
const STEP_S: u64 = 10;
const STEPS: u64 = 60;

/// `GET /v1/pipeline`.
#[utoipa::path(
    get,
    path = "/v1/pipeline",
    tag = "live",
    summary = "Ingest and processing rates, consumer lag, refusals, ECGs by status",
    description = "Rates are the caller's, over the last `pipeline.window_s` seconds: ingest by the time the gateway accepted each chunk (its Kafka timestamp, known once the processor has handled the chunk), processing by the time the processor wrote it. `throughput` gives the same two rates over the last ten minutes in steps of `step_s` seconds, oldest first, the last step ending at `at`. `consumer_lag` is the processor group's lag over the whole topic (`available: false` when the broker does not answer in time).",
    responses(
        (status = 200, description = "The pipeline's figures", body = Pipeline),
        (status = 400, description = "A parameter was given (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn pipeline(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<Pipeline>, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let tenant = &auth.0.tenant;
    let at = OffsetDateTime::now_utc();
    let window_s = state.pipeline_window_s.max(1);
    let ago = |s: u64| millis(at - Duration::seconds(s as i64));
    let probe = state.lag.clone();
    let lag = async {
        tokio::task::spawn_blocking(move || probe.messages())
            .await
            .map_err(anyhow::Error::new)
            .and_then(|r| r)
    };
    let (figures, statuses, steps, lag) = tokio::join!(
        live::pipeline(
            &state.clickhouse,
            tenant,
            ago(window_s),
            ago(3_600),
            ago(state.active_within_s)
        ),
        status::status_counts(&state.clickhouse, tenant),
        live::throughput(
            &state.clickhouse,
            tenant,
            millis(at),
            STEP_S as i64 * 1_000,
            STEPS
        ),
        lag
    );
    let (f, s, steps) = (figures?, statuses?, steps?);
    let consumer_lag = match lag {
        Ok(messages) => ConsumerLag {
            messages,
            available: true,
        },
        Err(e) => {
            tracing::warn!(error = %e, "consumer lag unavailable");
            ConsumerLag {
                messages: 0,
                available: false,
            }
        }
    };
    let per_s = |n: u64| n as f64 / window_s as f64;
    Ok(Json(Pipeline {
        at,
        window_s,
        ingest: Rate {
            chunks_per_s: per_s(f.ingest_chunks),
            samples_per_s: per_s(f.ingest_samples),
        },
        processing: Rate {
            chunks_per_s: per_s(f.processed_chunks),
            samples_per_s: per_s(f.processed_samples),
        },
        consumer_lag,
        dead_lettered: DeadLettered {
            total: f.dead_total,
            last_hour: f.dead_last_hour,
        },
        ecgs: StatusCounts {
            receiving: s.receiving,
            processing: s.processing,
            complete: s.complete,
            failed: s.failed,
        },
        active_streams: f.active,
        throughput: throughput(&steps),
    }))
}

/// The steps with samples spread over all [`STEPS`], oldest first (the
/// query names each by how many steps it is before the newest).
fn throughput(steps: &[live::Step]) -> Throughput {
    let mut ingest = vec![0.0; STEPS as usize];
    let mut processing = vec![0.0; STEPS as usize];
    for step in steps {
        // The query returns only ago < STEPS; a bad row is dropped, not a panic.
        let Some(i) = (STEPS - 1).checked_sub(step.ago) else {
            continue;
        };
        ingest[i as usize] = step.ingest_samples as f64 / STEP_S as f64;
        processing[i as usize] = step.processed_samples as f64 / STEP_S as f64;
    }
    Throughput {
        step_s: STEP_S,
        ingest_samples_per_s: ingest,
        processing_samples_per_s: processing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(ago: u64, ingest_samples: u64, processed_samples: u64) -> live::Step {
        live::Step {
            ago,
            ingest_samples,
            processed_samples,
        }
    }

    #[test]
    fn throughput_has_every_step_oldest_first_and_the_newest_last() {
        let t = throughput(&[step(0, 50, 70), step(STEPS - 1, 10, 0), step(STEPS, 99, 99)]);
        assert_eq!(t.step_s, STEP_S);
        assert_eq!(t.ingest_samples_per_s.len(), STEPS as usize);
        assert_eq!(t.processing_samples_per_s.len(), STEPS as usize);
        assert_eq!(t.ingest_samples_per_s[0], 1.0);
        assert_eq!(t.ingest_samples_per_s[STEPS as usize - 1], 5.0);
        assert_eq!(t.processing_samples_per_s[STEPS as usize - 1], 7.0);
        // The step out of range (the query never returns one) is dropped.
        let total: f64 = t.ingest_samples_per_s.iter().sum();
        assert_eq!(total, 6.0);
    }
}
