//! `GET /v1/pipeline`: the caller's share of the pipeline (rates, refusals,
//! ECGs by status, active streams) and the processor's consumer lag, a
//! number over every tenant that says nothing about any one of them.

use axum::Json;
use axum::extract::{RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_clickhouse::{live, status};
use ecg_schemas::api::{ConsumerLag, DeadLettered, ErrorBody, Pipeline, Rate, StatusCounts};
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::streams::millis;

/// `GET /v1/pipeline`.
#[utoipa::path(
    get,
    path = "/v1/pipeline",
    tag = "live",
    summary = "Ingest and processing rates, consumer lag, refusals, ECGs by status",
    description = "Rates are the caller's, over the last `pipeline.window_s` seconds: ingest by the time the gateway accepted each chunk (its Kafka timestamp, known once the processor has handled the chunk), processing by the time the processor wrote it. `consumer_lag` is the processor group's lag over the whole topic (`available: false` when the broker does not answer in time).",
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
    let (figures, statuses, lag) = tokio::join!(
        live::pipeline(
            &state.clickhouse,
            tenant,
            ago(window_s),
            ago(3_600),
            ago(state.active_within_s)
        ),
        status::status_counts(&state.clickhouse, tenant),
        lag
    );
    let (f, s) = (figures?, statuses?);
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
    }))
}
