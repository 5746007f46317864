//! The monitoring dashboard: a static single page (plain ES modules, no build
//! step, no CDN) compiled into the binary, so the API serves it on machines
//! without internet. It calls the API from the browser and signs in itself
//! (client credentials), so these routes need no state and no token.
//!
//! Every response carries a same-origin-only Content-Security-Policy: the
//! page loads nothing from elsewhere and runs no inline script. Assets are
//! revalidated on each load (`no-cache` plus an ETag of their bytes), so a
//! new binary never leaves a browser on stale code, and an unchanged one
//! costs a 304.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Same origin only; `data:` images for the canvas screenshots a user saves.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Everything under `query-api/dashboard/`; `index.html` is served at `/dashboard`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../dashboard/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../dashboard/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../dashboard/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../dashboard/api.js"),
    },
    Asset {
        name: "overview.js",
        content_type: JS,
        body: include_str!("../dashboard/overview.js"),
    },
    Asset {
        name: "ecg.js",
        content_type: JS,
        body: include_str!("../dashboard/ecg.js"),
    },
    Asset {
        name: "plot.js",
        content_type: JS,
        body: include_str!("../dashboard/plot.js"),
    },
    Asset {
        name: "beats.js",
        content_type: JS,
        body: include_str!("../dashboard/beats.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../dashboard/favicon.svg"),
    },
    Asset {
        name: "format.js",
        content_type: JS,
        body: include_str!("../dashboard/format.js"),
    },
];

/// Each asset's ETag, computed once: a hash of its bytes (the bytes are fixed
/// at compile time, so the tag only changes with a new binary).
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut h = DefaultHasher::new();
            a.body.hash(&mut h);
            format!("\"{:016x}\"", h.finish())
        })
        .collect()
});

/// `GET /dashboard`, `GET /dashboard/` and `GET /dashboard/{asset}`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/{asset}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return with_security((StatusCode::NOT_FOUND, "no such dashboard asset\n").into_response());
    };
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The tag is 16 hex digits in quotes: always a valid header value.
    h.insert(header::ETAG, HeaderValue::from_str(etag).unwrap());
    with_security(response)
}

fn with_security(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
