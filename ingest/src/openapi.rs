//! The gateway's OpenAPI 3.1 document, generated from the handlers'
//! annotations and the `ecg-schemas` types, at `/openapi.json`, and Swagger
//! UI (vendored in the binary: no CDN) at `/docs`.

use axum::Router;
use ecg_schemas::api::BearerAuth;
use ecg_schemas::api::{Accepted, ChunkRequest, CreateEcg, EndStream, ErrorBody, Units};
use ecg_schemas::samples::Calibration;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecg-stream ingest gateway",
        description = "Submit ECG recordings: open an ECG, stream its chunks (JSON, CSV or Arrow IPC), or upload a whole recording of any size. Every 202 means the data is durable in Kafka. Tokens come from the query API's `/oauth/token` (client credentials) or a configured OAuth2/OIDC provider; write endpoints need scope `ecg:write`.",
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
    components(schemas(CreateEcg, ChunkRequest, EndStream, Accepted, ErrorBody, Units, Calibration, routes::Readiness)),
    modifiers(&BearerAuth),
    tags((name = "ecgs", description = "ECG submission"), (name = "operations", description = "Health and readiness"))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// `/openapi.json` and `/docs`, to merge into the gateway's router.
pub fn routes() -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
