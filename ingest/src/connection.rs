//! `Connection: close` on a refused request that carries a body.
//!
//! A refusal (4xx or 5xx) is often answered before the request's body has
//! been read to its end: an upload over its sample limit, a chunk for an
//! unknown ECG. The server cannot reuse such a connection (the unread rest of
//! the body is still on it) and closes it after the answer. Unless the answer
//! says so, an HTTP/1.1 client takes the connection back into its pool, and
//! its next request on it fails with "connection closed before message
//! completed". Saying `Connection: close` lets every client drop it cleanly.
//! Accepted requests keep their connection alive; HTTP/2 has no such header
//! (its streams end independently).

use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;

/// Adds `Connection: close` to a refusal of an HTTP/1.x request with a body.
pub async fn close_after_refusal(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    let http1 = request.version() <= Version::HTTP_11;
    let mut response = next.run(request).await;
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if has_body && http1 && refused {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
