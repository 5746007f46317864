//! The HTTP handlers, one file per resource. Every handler but `healthz`
//! needs a token with scope `ecg:read`, and reads only the caller's tenant.

pub mod devices;
pub mod insights;
pub mod list;
pub mod pipeline;
pub mod samples;
pub mod status;
pub mod streams;

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}
