//! The token endpoint's rate limits and hashing cap, through `oauth::routes`
//! with the peer address axum would record (`MockConnectInfo`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use ecg_auth::{IssuerSettings, SigningKey, TokenIssuer, TokenLimits, oauth};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{SECRET, body_json, form_encode, header, settings};

fn issuer(limits: TokenLimits) -> Arc<TokenIssuer> {
    let settings = IssuerSettings {
        limits,
        ..settings()
    };
    Arc::new(TokenIssuer::new(SigningKey::generate(), settings).unwrap())
}

/// Limits with every rate off: tests switch on the one they look at.
fn no_rates() -> TokenLimits {
    TokenLimits {
        per_address_per_minute: 0,
        per_client_per_minute: 0,
        ..TokenLimits::default()
    }
}

async fn post(
    issuer: &Arc<TokenIssuer>,
    peer: Option<&str>,
    forwarded_for: Option<&str>,
    id: &str,
    secret: &str,
) -> Response {
    let mut app: Router = oauth::routes().with_state(issuer.clone());
    if let Some(peer) = peer {
        let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
        app = app.layer(MockConnectInfo(addr));
    }
    let mut request = Request::post(oauth::TOKEN_PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    );
    app.oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

async fn status(
    issuer: &Arc<TokenIssuer>,
    peer: Option<&str>,
    forwarded_for: Option<&str>,
    id: &str,
    secret: &str,
) -> StatusCode {
    post(issuer, peer, forwarded_for, id, secret).await.status()
}

#[tokio::test]
async fn an_address_over_its_budget_gets_429_slow_down_with_retry_after() {
    let issuer = issuer(TokenLimits {
        per_address_per_minute: 6,
        per_address_burst: 2,
        ..no_rates()
    });
    for _ in 0..2 {
        let s = status(&issuer, Some("192.0.2.1"), None, "acme", "wrong").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let response = post(&issuer, Some("192.0.2.1"), None, "acme", SECRET).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // 6 a minute: the next one in 10 s.
    assert_eq!(header(&response, "retry-after"), Some("10"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(
        body_json(response).await,
        json!({
            "error": "slow_down",
            "error_description": "too many token requests from this address; retry in 10 s"
        })
    );
    // Another address has its own budget, and the right secret works there.
    let s = status(&issuer, Some("198.51.100.7"), None, "acme", SECRET).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn known_and_unknown_client_ids_are_limited_alike() {
    let issuer = issuer(TokenLimits {
        per_client_per_minute: 6,
        per_client_burst: 2,
        ..no_rates()
    });
    let mut answers = Vec::new();
    for id in ["acme", "nobody"] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let response = post(&issuer, Some("192.0.2.1"), None, id, "wrong").await;
            let status = response.status();
            seen.push((status, body_json(response).await));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0][2].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        answers[0][2].1["error_description"],
        "too many token requests for this client; retry in 10 s"
    );
    assert_eq!(
        answers[0], answers[1],
        "the answers must not tell which client ids exist"
    );
}

#[tokio::test]
async fn a_client_that_authenticated_is_not_locked_out_by_others_spraying_its_id() {
    let issuer = issuer(TokenLimits {
        per_client_per_minute: 1,
        per_client_burst: 2,
        ..no_rates()
    });
    let home = Some("192.0.2.1");
    assert_eq!(
        status(&issuer, home, None, "acme", SECRET).await,
        StatusCode::OK
    );
    // Someone else spends acme's budget guessing.
    let away = Some("203.0.113.9");
    assert_eq!(
        status(&issuer, away, None, "acme", "guess").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&issuer, away, None, "acme", "guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // acme itself, from where it authenticated before, still gets tokens.
    for _ in 0..3 {
        assert_eq!(
            status(&issuer, home, None, "acme", SECRET).await,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let limits = TokenLimits {
        per_address_per_minute: 1,
        per_address_burst: 1,
        ..no_rates()
    };
    let proxy = Some("10.0.0.2");
    // Not trusted: the header is ignored and both requests are the proxy's.
    let untrusting = issuer(limits.clone());
    let s = status(&untrusting, proxy, Some("198.51.100.1"), "x", "y").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let s = status(&untrusting, proxy, Some("198.51.100.2"), "x", "y").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    let trusting = issuer(TokenLimits {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..limits
    });
    for client in ["198.51.100.1", "198.51.100.2"] {
        let s = status(&trusting, proxy, Some(client), "x", "y").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{client} has its own budget");
    }
    // What the client itself wrote left of the proxy's entry changes nothing.
    let s = status(&trusting, proxy, Some("192.0.2.99, 198.51.100.1"), "x", "y").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // A client outside the trusted range cannot pick its address.
    let s = status(&trusting, Some("203.0.113.9"), Some("192.0.2.50"), "x", "y").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let s = status(&trusting, Some("203.0.113.9"), Some("192.0.2.51"), "x", "y").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_connect_info_all_requests_share_one_address_budget() {
    let issuer = issuer(TokenLimits {
        per_address_per_minute: 1,
        per_address_burst: 1,
        ..no_rates()
    });
    assert_eq!(
        status(&issuer, None, None, "a", "b").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&issuer, None, None, "c", "d").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_hashing_cap_get_503_at_once_unknown_ids_included() {
    let issuer = issuer(TokenLimits {
        max_concurrent_hashes: 1,
        max_waiting: 0,
        ..no_rates()
    });
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let issuer = issuer.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let response = post(
                    &issuer,
                    Some("192.0.2.1"),
                    None,
                    &format!("nobody-{i}"),
                    "x",
                )
                .await;
                (start.elapsed(), response)
            })
        })
        .collect();
    let (mut refused, mut checked) = (0, 0);
    for request in requests {
        let (took, response) = request.await.unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(header(&response, "retry-after"), Some("1"));
                assert!(took < Duration::from_millis(500), "refused late: {took:?}");
                assert_eq!(
                    body_json(response).await,
                    json!({
                        "error": "temporarily_unavailable",
                        "error_description": "the token service is busy; retry shortly"
                    })
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        checked >= 1 && refused >= 1,
        "{checked} checked, {refused} refused"
    );
}
