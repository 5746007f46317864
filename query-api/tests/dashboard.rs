//! The dashboard's static routes, called in-process through the API's real
//! router: the page and its assets are served from the binary with their
//! content types and the same-origin-only CSP, unknown assets are 404, and
//! none of it needs a token (the page signs in itself).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ecg_query_api::{AppState, Config, router};
use tower::ServiceExt;

fn app(dir: &tempfile::TempDir) -> axum::Router {
    let mut config = Config::default();
    config.auth.key_file = dir.path().join("signing-key.pem");
    // Never contacted: these routes do not touch ClickHouse.
    config.clickhouse.url = "http://127.0.0.1:1".into();
    router(AppState::new(&config).unwrap())
}

async fn get(
    app: &axum::Router,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn header(headers: &axum::http::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .map_or("", |v| v.to_str().unwrap_or_default())
}

#[tokio::test]
async fn dashboard_serves_its_page_and_assets_with_a_same_origin_csp_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);

    let (status, headers, body) = get(&app, "/dashboard", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let csp = header(&headers, header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
    assert!(body.contains(r#"<script type="module" src="/dashboard/app.js">"#));
    assert!(body.contains(r#"id="signin-form""#));

    // Every asset the page and its modules load is served, with its type.
    for (asset, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("overview.js", "text/javascript; charset=utf-8"),
        ("ecg.js", "text/javascript; charset=utf-8"),
        ("plot.js", "text/javascript; charset=utf-8"),
        ("format.js", "text/javascript; charset=utf-8"),
        ("beats.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = get(&app, &format!("/dashboard/{asset}"), None).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert_eq!(
            header(&headers, header::CONTENT_TYPE),
            content_type,
            "{asset}"
        );
        assert!(!body.is_empty(), "{asset}");
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        // Relative imports name only served files (a missing one would break the page).
        for import in body.lines().filter_map(|l| l.split("from './").nth(1)) {
            let file = import.split('\'').next().unwrap();
            let (status, ..) = get(&app, &format!("/dashboard/{file}"), None).await;
            assert_eq!(status, StatusCode::OK, "{asset} imports {file}");
        }
    }

    // Revalidation: the same ETag gives a 304 without a body.
    let (_, headers, _) = get(&app, "/dashboard/plot.js", None).await;
    let etag = header(&headers, header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    let (status, _, body) = get(&app, "/dashboard/plot.js", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    let (status, ..) = get(&app, "/dashboard/plot.js", Some("\"stale\"")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_dashboard_asset_is_404_with_the_csp() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    for path in [
        "/dashboard/nope.js",
        "/dashboard/..%2Fsrc%2Flib.rs",
        "/dashboard/app.js/x",
    ] {
        let (status, headers, _) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        if path == "/dashboard/nope.js" {
            assert!(header(&headers, header::CONTENT_SECURITY_POLICY).contains("'self'"));
        }
    }
}
