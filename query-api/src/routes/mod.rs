//! The HTTP handlers, one file per resource. Every handler but `healthz`
//! needs a token with scope `ecg:read`, and reads only the caller's tenant.

pub mod beats;
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

/// A path no endpoint has: 404 with a JSON body.
pub async fn no_route(uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::NoRoute {
        path: uri.path().to_string(),
    }
}

/// An endpoint's path with a method it does not take: 405 with a JSON body.
pub async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> crate::error::ApiError {
    crate::error::ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}
