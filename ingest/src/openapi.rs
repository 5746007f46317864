//! The gateway's OpenAPI 3.1 document, generated from the handlers'
//! annotations and the `ecg-schemas` types, at `/openapi.json`, and Swagger
//! UI (vendored in the binary: no CDN) at `/docs`.
//!
//! The limits in it are the running gateway's: [`document`] writes the
//! configured [`Limits`] and body limits into the generated schemas (see
//! [`limits`]), so a client generated from the document refuses what this
//! gateway refuses.

use axum::Router;
use ecg_schemas::Limits;
use ecg_schemas::api::BearerAuth;
use ecg_schemas::api::{
    Accepted, ArrowStream, ChunkRequest, CreateEcg, EndStream, ErrorBody, Units,
};
use ecg_schemas::samples::Calibration;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes;

pub mod limits;

pub use limits::BodyLimits;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecg-stream ingest gateway",
        description = "Submit ECG recordings: open an ECG, stream its chunks (JSON, CSV or Arrow IPC), or upload a whole recording of any size. Every 202 means the data is durable in Kafka. Tokens come from the query API's `/oauth/token` (client credentials) or a configured OAuth2/OIDC provider; write endpoints need scope `ecg:write`. The limits in this document are this gateway's configured ones.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::create_ecg,
        routes::post_chunk,
        routes::put_signal,
        routes::end_stream,
        routes::healthz,
        routes::readyz,
    ),
    components(schemas(CreateEcg, ChunkRequest, EndStream, Accepted, ErrorBody, Units, Calibration, ArrowStream, routes::Readiness)),
    modifiers(&BearerAuth),
    tags((name = "ecgs", description = "ECG submission"), (name = "operations", description = "Health and readiness"))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The document the gateway serves: the generated one with `limits` and
/// `bodies` written into it.
pub fn document(limits: &Limits, bodies: &BodyLimits) -> serde_json::Value {
    // Serialising the derived document cannot fail: it is maps, strings
    // and numbers only.
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document is JSON");
    limits::apply(&mut doc, limits, bodies);
    doc
}

/// `/openapi.json` (serving `doc`) and `/docs`, to merge into the gateway's
/// router.
pub fn routes(doc: serde_json::Value) -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", doc))
}
