//! `GET /v1/ecgs/{id}/fhir`: the ECG as an HL7 FHIR R4 `Observation`, one
//! `component` of `SampledData` per lead (`ecg_formats::fhir` writes the
//! document; this module reads the blocks and streams it).

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ecg_clickhouse::blocks::{self, Stored};
use ecg_clickhouse::progress;
use ecg_formats::fhir::{self as doc, DataForm, Head};
use ecg_schemas::Units;
use ecg_schemas::api::ErrorBody;

use super::{Out, Plan, Span, Stop, integers, plans, spawn_writer, time_before};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::params::{self, Params};
use crate::store::blocks::scan;

/// `GET /v1/ecgs/{id}/fhir`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}/fhir",
    tag = "ecgs",
    summary = "The ECG as a FHIR R4 Observation with SampledData",
    description = "An HL7 FHIR R4 `Observation` (category `procedure`, code MDC_ECG_ELEC_POTL and LOINC 11524-6 \"EKG study\", subject and device the ECG's device id, `effectivePeriod` the samples' span) with one `component` per lead: coded with its IEEE 11073 MDC lead code where the lead is standard (I, II, III, aVR, aVL, aVF, V1-V6, ...) and named in `code.text`, and `valueSampledData` with `origin`, `period` (ms), `factor`, `dimensions` 1 and `data`. The data are exact: a digital ECG's ADC counts (origin = -baseline x factor, factor = 1/gain, both exact decimals where 1/gain is one; the extension `https://ecg-stream.dev/fhir/StructureDefinition/adc` carries the gain and baseline exactly), decimal integers over a power of ten (factor 10^-scale), or else each value's shortest decimal text (factor 1). `status` is `final` once every chunk up to the final one is stored, `preliminary` before. A range holds at most `export.fhir_page_samples` samples per lead; a longer one is split into pages, each an Observation, linked by the header `Link: <...>; rel=\"next\"` and the extension `https://ecg-stream.dev/fhir/StructureDefinition/next-page`. The document is streamed: an error after the first byte ends the transfer early, without the closing brace.",
    params(
        ("id" = uuid::Uuid, Path, description = "The ECG id"),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, inclusive (default: the first sample)"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive (default: the last sample stored)"),
    ),
    responses(
        (status = 200, description = "The Observation", content_type = "application/fhir+json", body = Object,
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when the range continues on another page"))),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_fhir(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (tenant, id) = (caller.tenant, ecg.ecg_id);
    let q = Params::parse(query.as_deref(), &["from", "to"])?;
    let ch = &state.clickhouse;
    let placed = placed_samples(ch, &tenant, id).await?;
    let asked = Span::of(&q, &ecg, placed)?;
    let (t0, rate) = (ecg.started_at, ecg.sample_rate_hz);
    let page = state.fhir_page_samples;
    let span = Span {
        first: asked.first,
        last: asked.last.min(asked.first.saturating_add(page)),
    };
    let next = (span.last < asked.last).then(|| {
        let from = time_before(span.last, t0, rate);
        let mut url = format!("/v1/ecgs/{id}/fhir?from={}", rfc3339(from));
        if let Some(to) = q.time("to").ok().flatten() {
            url.push_str(&format!("&to={}", rfc3339(to)));
        }
        url
    });
    let status = match progress::newest(ch, &tenant, id).await? {
        Some(p) if p.final_seq.is_some_and(|f| p.next_seq > f) => "final",
        _ => "preliminary",
    };
    let forms = blocks::lead_forms(ch, &tenant, id, (span.first, span.last)).await?;
    let plans = plans(&ecg.leads, &forms);

    let (mut out, body) = Out::new();
    let id_text = id.to_string();
    doc::write_head(
        &mut out.buf,
        &Head {
            id: &id_text,
            status,
            device_id: &ecg.device_id,
            start: params::time_of(span.first, t0, rate),
            end: params::time_of(span.last, t0, rate),
            sample_rate_hz: rate,
            next: next.as_deref(),
        },
    );
    let job = Components {
        client: ch.clone(),
        tenant,
        id,
        leads: ecg.leads,
        units: ecg.units,
        rate,
        span,
        plans,
    };
    spawn_writer(out, |out| job.write(out));
    let mut response = ([(header::CONTENT_TYPE, doc::MEDIA_TYPE)], body).into_response();
    if let Some(next) = next {
        let link = format!("<{next}>; rel=\"next\"");
        if let Ok(value) = header::HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// Samples placed in every lead: the range an export can hold.
pub(super) async fn placed_samples(
    ch: &clickhouse::Client,
    tenant: &str,
    id: uuid::Uuid,
) -> Result<u64, ApiError> {
    Ok(blocks::lead_totals(ch, tenant, id)
        .await?
        .iter()
        .map(|t| t.samples)
        .min()
        .unwrap_or(0))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Everything the components need, moved into the writing task.
struct Components {
    client: clickhouse::Client,
    tenant: String,
    id: uuid::Uuid,
    leads: Vec<String>,
    units: Units,
    rate: f64,
    span: Span,
    plans: Vec<Plan>,
}

impl Components {
    async fn write(self, mut out: Out) -> Result<(), Stop> {
        for (k, (lead, plan)) in self.leads.iter().zip(&self.plans).enumerate() {
            let form = match plan {
                Plan::Adc { gain, baseline, .. } => DataForm::Adc {
                    gain: *gain,
                    baseline: *baseline,
                },
                Plan::Scaled { scale, .. } => DataForm::Scaled { scale: *scale },
                Plan::Values { .. } => DataForm::Text,
            };
            doc::write_component_start(&mut out.buf, k == 0, lead, self.units, self.rate, &form);
            let cursor = blocks::overlapping_leads(
                &self.client,
                &self.tenant,
                self.id,
                std::slice::from_ref(lead),
                (self.span.first, self.span.last),
            )?;
            let fold = LeadData {
                out,
                plan: plan.clone(),
                span: self.span,
                last_seq: None,
                first: true,
                gone: false,
            };
            let fold = scan(cursor, fold, |f, b| f.block(&b)).await?;
            if fold.gone {
                return Err(Stop::Gone);
            }
            out = fold.out;
            doc::write_component_end(&mut out.buf);
            out.flush().await?;
        }
        doc::write_tail(&mut out.buf);
        out.flush().await?;
        Ok(())
    }
}

/// The fold that writes one lead's data, block by block, on the blocking
/// pool.
struct LeadData {
    out: Out,
    plan: Plan,
    span: Span,
    /// The last seq written: a block read twice counts once.
    last_seq: Option<u32>,
    /// No data item written yet.
    first: bool,
    /// The client went away: skip the rest.
    gone: bool,
}

impl LeadData {
    fn block(&mut self, b: &Stored) {
        if self.gone || self.last_seq.is_some_and(|s| b.seq <= s) {
            return;
        }
        self.last_seq = Some(b.seq);
        let ints = integers(&self.plan, b);
        let len = match &ints {
            Some(v) => v.len(),
            None => b.form().len(),
        };
        let Some((at, n)) = self.span.of_block(b, len) else {
            return;
        };
        match ints {
            Some(v) => {
                for &x in &v[at..at + n] {
                    doc::write_count(&mut self.out.buf, self.first, x);
                    self.first = false;
                }
            }
            None => {
                for &x in &b.form().values()[at..at + n] {
                    doc::write_value(&mut self.out.buf, self.first, x);
                    self.first = false;
                }
            }
        }
        if self.out.flush_if_full_blocking().is_err() {
            self.gone = true;
        }
    }
}
