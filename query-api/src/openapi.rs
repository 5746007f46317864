//! The query API's OpenAPI 3.1 document, generated from the handlers'
//! annotations and the `ecg-schemas` types, at `/openapi.json`, and Swagger
//! UI (vendored in the binary: no CDN) at `/docs`.

use axum::Router;
use ecg_schemas::api::BearerAuth;
use ecg_schemas::api::{
    ActiveStream, ActiveStreams, Beat, BeatsPage, ConsumerLag, DeadLettered, DeviceBucket,
    DeviceInsights, EcgPage, EcgStatus, EcgSummary, ErrorBody, FailedChunk, FailedKind, HeartRate,
    Insights, LeadInsight, LeadQuality, LeadSeries, Pipeline, Rate, SamplesPage, SignalQuality,
    Status, StatusCounts, Throughput, Units, Window, WindowHeart, Windows,
};
use ecg_schemas::samples::Calibration;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecg-stream query API",
        description = "Read ECGs: the list, each ECG's status, insights (zero crossings in total and per time window, heart rate and HRV), beats, samples for plotting (JSON or Arrow IPC), exports as FHIR Observations and WFDB records, per-device insights, live streams and pipeline health. Every endpoint but `/healthz` needs a bearer token with scope `ecg:read` (from `POST /oauth/token`, client credentials, or a configured OAuth2/OIDC provider) and sees the token's tenant only.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::list::list_ecgs,
        routes::status::ecg_status,
        routes::insights::ecg_insights,
        routes::samples::ecg_samples,
        routes::beats::ecg_beats,
        crate::export::fhir::ecg_fhir,
        crate::export::wfdb::ecg_wfdb,
        routes::devices::device_insights,
        routes::streams::active_streams,
        routes::pipeline::pipeline,
        routes::healthz,
        crate::token_doc::token,
        crate::token_doc::jwks,
    ),
    components(schemas(
        EcgPage, EcgSummary, EcgStatus, FailedChunk, FailedKind, Insights, LeadInsight, HeartRate, LeadQuality,
        Windows, Window, WindowHeart, SignalQuality, BeatsPage, Beat,
        SamplesPage, LeadSeries, DeviceInsights, DeviceBucket, ActiveStreams, ActiveStream,
        Pipeline, Rate, Throughput, ConsumerLag, DeadLettered, StatusCounts, Status, Units, Calibration,
        ErrorBody, crate::params::WindowName, crate::params::BucketName,
        crate::token_doc::TokenForm, crate::token_doc::GrantType, crate::token_doc::TokenAnswer,
        crate::token_doc::OAuthErrorBody, crate::token_doc::JwkSet
    )),
    modifiers(&BearerAuth),
    tags((name = "ecgs", description = "ECGs, their status, insights and samples"),
         (name = "live", description = "Devices, live streams and the pipeline, for dashboards"),
         (name = "auth", description = "Tokens (OAuth2 client credentials) and their keys"),
         (name = "operations", description = "Health"))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// `/openapi.json` and `/docs`, to merge into the API's router.
pub fn routes() -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_as_arrow_are_documented_as_bytes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schema = doc
            .pointer("/paths/~1v1~1ecgs~1{id}~1samples/get/responses/200/content/application~1vnd.apache.arrow.stream/schema/$ref")
            .and_then(|r| r.as_str())
            .and_then(|r| doc.pointer(r.trim_start_matches('#')))
            .expect("the Arrow answer of /samples has a schema");
        assert_eq!(schema["type"], "string", "{schema}");
        assert_eq!(schema["format"], "binary", "{schema}");
    }
}
