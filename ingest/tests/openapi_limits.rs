//! The gateway's OpenAPI document carries the limits it enforces, with the
//! configured values: every field of `Limits` and every body limit of
//! `[upload]` is mapped to the places it must appear (a new field does not
//! compile until it is), and the numbers read back from the document are the
//! ones the validator enforces.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ecg_ingest::body_rate::BodyRate;
use ecg_ingest::config::{Config, UploadConfig};
use ecg_ingest::openapi::limits::{CHUNKS, CREATE, END, SIGNAL, parameter};
use ecg_ingest::openapi::{BodyLimits, document};
use ecg_ingest::{AppState, router};
use ecg_schemas::Limits;
use ecg_schemas::samples::Calibration;
use ecg_schemas::validate::{
    DEVICE_ID_PATTERN, EARLIEST_START, END_OF_STARTS, MAX_GAIN, samples_map,
};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;

const CREATE_ECG: &str = "/components/schemas/CreateEcg/properties";
const CHUNK: &str = "/components/schemas/ChunkRequest/properties";

/// Limits unlike the defaults and unlike each other, so that a default or a
/// mixed-up limit in the document shows.
fn odd_limits() -> Limits {
    Limits {
        max_leads: 7,
        max_lead_name_len: 5,
        max_device_id_len: 9,
        min_sample_rate_hz: 12.5,
        max_sample_rate_hz: 4321.5,
        max_chunk_samples: 777,
        max_chunk_values: 3333,
        // Past i32::MAX: the seqs are no longer int32.
        max_seq: 3_000_000_000,
    }
}

fn odd_upload() -> UploadConfig {
    UploadConfig {
        max_json_bytes: 54_321,
        max_signal_samples: 987_654,
        max_buffered_bytes: 65_432,
        max_buffered_bytes_per_tenant: 43_210,
        max_buffered_bytes_per_client: 32_109,
        body_idle_timeout_ms: 7_654,
        body_min_bytes_per_second: 876,
        body_rate_grace_ms: 5_432,
        ..UploadConfig::default()
    }
}

/// `/openapi.json` of a gateway started from `limits` and `upload`.
async fn served_document(limits: Limits, upload: UploadConfig) -> Value {
    let mut config = Config {
        limits,
        upload,
        ..Config::default()
    };
    // Nothing is produced; a closed port keeps the producer quiet.
    config.kafka.brokers = "127.0.0.1:1".into();
    let app = router(AppState::new(&config).unwrap());
    let response = app
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Where a limit must appear.
enum Place {
    /// A schema keyword with exactly this value, e.g. `.../leads/maxItems`.
    Keyword(String, Value),
    /// A description (at the pointer to the object that has it) that says
    /// this text.
    Says(String, String),
}

fn keyword(at: impl Into<String>, value: impl Into<Value>) -> Place {
    Place::Keyword(at.into(), value.into())
}

fn says(at: impl Into<String>, text: impl ToString) -> Place {
    Place::Says(at.into(), text.to_string())
}

/// Every place `places` names, or a failure listing each one missing.
fn assert_in(doc: &Value, places: &[(&str, Vec<Place>)]) {
    let mut missing = Vec::new();
    for (limit, places) in places {
        assert!(!places.is_empty(), "{limit} has no place in the document");
        for place in places {
            match place {
                Place::Keyword(at, value) => {
                    if doc.pointer(at) != Some(value) {
                        missing.push(format!(
                            "{limit}: {at} is {:?}, not {value}",
                            doc.pointer(at)
                        ));
                    }
                }
                Place::Says(at, text) => {
                    let description = doc
                        .pointer(&format!("{at}/description"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !description.contains(text.as_str()) {
                        missing.push(format!(
                            "{limit}: {at}/description does not say {text:?}: {description:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The places of a lead name's rules: the items of `leads`, the keys of
/// `adc` and of the sample maps.
fn lead_names() -> Vec<String> {
    vec![
        format!("{CREATE_ECG}/leads/items"),
        format!("{CREATE_ECG}/adc/propertyNames"),
        format!("{CREATE_ECG}/signal/propertyNames"),
        format!("{CHUNK}/samples/propertyNames"),
    ]
}

#[tokio::test]
async fn every_configured_limit_is_in_the_served_openapi_document() {
    let limits = odd_limits();
    let doc = served_document(limits.clone(), odd_upload()).await;
    let seq_param = parameter(&doc, CHUNKS, "seq");
    let sample_maps = [format!("{CREATE_ECG}/signal"), format!("{CHUNK}/samples")];
    let chunk_body = format!("{CHUNKS}/requestBody");

    // No `..`: a field added to `Limits` or `[upload]` does not compile here
    // until it is given its places below (or a reason it has none).
    let Limits {
        max_leads,
        max_lead_name_len,
        max_device_id_len,
        min_sample_rate_hz,
        max_sample_rate_hz,
        max_chunk_samples,
        max_chunk_values,
        max_seq,
    } = limits.clone();
    let UploadConfig {
        max_json_bytes,
        max_signal_samples,
        max_buffered_bytes,
        max_buffered_bytes_per_tenant,
        max_buffered_bytes_per_client,
        body_idle_timeout_ms,
        body_min_bytes_per_second,
        body_rate_grace_ms,
        // How the gateway cuts a whole signal into chunks, and how many it
        // produces at once: its own work, not a limit on what is sent.
        chunk_samples: _,
        max_in_flight: _,
        // How long a request waits under `max_buffered_bytes` before its
        // 503, and where uploads are spooled: not limits on a request.
        buffer_wait_ms: _,
        spool_dir: _,
    } = odd_upload();
    assert_eq!(
        limits.seq_limit(),
        max_seq,
        "the test's max_seq is not capped"
    );

    let places: Vec<(&str, Vec<Place>)> = vec![
        (
            "max_leads",
            vec![
                keyword(format!("{CREATE_ECG}/leads/maxItems"), max_leads),
                keyword(format!("{CREATE_ECG}/adc/maxProperties"), max_leads),
                keyword(format!("{CREATE_ECG}/signal/maxProperties"), max_leads),
                keyword(format!("{CHUNK}/samples/maxProperties"), max_leads),
            ],
        ),
        (
            "max_lead_name_len",
            lead_names()
                .into_iter()
                .flat_map(|at| {
                    [
                        keyword(format!("{at}/maxLength"), max_lead_name_len),
                        keyword(format!("{at}/pattern"), limits.lead_name_pattern()),
                    ]
                })
                .collect(),
        ),
        (
            "max_device_id_len",
            vec![
                keyword(
                    format!("{CREATE_ECG}/device_id/maxLength"),
                    max_device_id_len,
                ),
                says(
                    format!("{CREATE_ECG}/device_id"),
                    format!("1 to {max_device_id_len} bytes"),
                ),
            ],
        ),
        (
            "min_sample_rate_hz",
            vec![keyword(
                format!("{CREATE_ECG}/sample_rate_hz/minimum"),
                min_sample_rate_hz,
            )],
        ),
        (
            "max_sample_rate_hz",
            vec![keyword(
                format!("{CREATE_ECG}/sample_rate_hz/maximum"),
                max_sample_rate_hz,
            )],
        ),
        (
            "max_chunk_samples",
            sample_maps
                .iter()
                .map(|at| {
                    keyword(
                        format!("{at}/additionalProperties/maxItems"),
                        max_chunk_samples,
                    )
                })
                .chain([says(
                    &chunk_body,
                    format!("{max_chunk_samples} samples per lead"),
                )])
                .collect(),
        ),
        (
            "max_chunk_values",
            sample_maps
                .iter()
                .chain([&chunk_body])
                .map(|at| says(at, format!("{max_chunk_values} all leads together")))
                .collect(),
        ),
        (
            "max_seq",
            [
                format!("{CHUNK}/seq"),
                "/components/schemas/EndStream/properties/final_seq".into(),
                format!("{seq_param}/schema"),
            ]
            .into_iter()
            .flat_map(|at| {
                [
                    keyword(format!("{at}/maximum"), max_seq),
                    keyword(format!("{at}/minimum"), 0),
                    keyword(format!("{at}/format"), "int64"),
                ]
            })
            .collect(),
        ),
        (
            "upload.max_json_bytes",
            [CREATE, CHUNKS, END]
                .into_iter()
                .flat_map(|op| {
                    [
                        says(
                            format!("{op}/requestBody"),
                            format!("{max_json_bytes} bytes"),
                        ),
                        says(
                            format!("{op}/responses/413"),
                            format!("{max_json_bytes} bytes"),
                        ),
                    ]
                })
                .collect(),
        ),
        (
            "upload.max_signal_samples",
            vec![
                says(format!("{SIGNAL}/requestBody"), max_signal_samples),
                says(format!("{SIGNAL}/responses/413"), max_signal_samples),
            ],
        ),
        (
            "upload.max_buffered_bytes",
            [CREATE, CHUNKS, END]
                .into_iter()
                .map(|op| {
                    says(
                        format!("{op}/responses/503"),
                        format!("{max_buffered_bytes} bytes"),
                    )
                })
                .collect(),
        ),
        (
            "upload.max_buffered_bytes_per_tenant",
            [CREATE, CHUNKS, END]
                .into_iter()
                .map(|op| {
                    says(
                        format!("{op}/responses/429"),
                        format!("`upload.max_buffered_bytes_per_tenant` is {max_buffered_bytes_per_tenant} bytes"),
                    )
                })
                .collect(),
        ),
        (
            "upload.max_buffered_bytes_per_client",
            [CREATE, CHUNKS, END]
                .into_iter()
                .flat_map(|op| {
                    [
                        says(
                            format!("{op}/responses/429"),
                            format!("`upload.max_buffered_bytes_per_client` {max_buffered_bytes_per_client} bytes"),
                        ),
                        says(
                            format!("{op}/responses/503"),
                            format!("a client's share of {max_buffered_bytes_per_client} bytes"),
                        ),
                    ]
                })
                .collect(),
        ),
        (
            "upload.body_idle_timeout_ms",
            [CREATE, CHUNKS, END, SIGNAL]
                .into_iter()
                .map(|op| {
                    says(
                        format!("{op}/responses/408"),
                        format!("`upload.body_idle_timeout_ms` is {body_idle_timeout_ms} ms"),
                    )
                })
                .collect(),
        ),
        (
            "upload.body_min_bytes_per_second",
            [CREATE, CHUNKS, END, SIGNAL]
                .into_iter()
                .map(|op| {
                    says(
                        format!("{op}/responses/408"),
                        format!("`upload.body_min_bytes_per_second` {body_min_bytes_per_second} bytes/s"),
                    )
                })
                .collect(),
        ),
        (
            "upload.body_rate_grace_ms",
            [CREATE, CHUNKS, END, SIGNAL]
                .into_iter()
                .map(|op| {
                    says(
                        format!("{op}/responses/408"),
                        format!("`upload.body_rate_grace_ms` of {body_rate_grace_ms} ms"),
                    )
                })
                .collect(),
        ),
        // The rules that are not configured.
        (
            "a device id is not empty and has no control character",
            vec![
                keyword(format!("{CREATE_ECG}/device_id/minLength"), 1),
                keyword(format!("{CREATE_ECG}/device_id/pattern"), DEVICE_ID_PATTERN),
            ],
        ),
        (
            "an ECG has a lead, each once",
            vec![
                keyword(format!("{CREATE_ECG}/leads/minItems"), 1),
                keyword(format!("{CREATE_ECG}/leads/uniqueItems"), true),
            ],
        ),
        (
            "a lead name is not empty",
            lead_names()
                .into_iter()
                .map(|at| keyword(format!("{at}/minLength"), 1))
                .collect(),
        ),
        (
            "every declared lead has its samples and its calibration",
            [
                format!("{CREATE_ECG}/adc"),
                format!("{CREATE_ECG}/signal"),
                format!("{CHUNK}/samples"),
            ]
            .into_iter()
            .map(|at| keyword(format!("{at}/minProperties"), 1))
            .collect(),
        ),
        (
            "a chunk has a sample, finite, and ADC counts fit 32 bits",
            sample_maps
                .iter()
                .chain([&chunk_body])
                .flat_map(|at| {
                    [
                        says(at, "finite"),
                        says(at, format!("from {} to {}", i32::MIN, i32::MAX)),
                    ]
                })
                .chain(
                    sample_maps
                        .iter()
                        .map(|at| keyword(format!("{at}/additionalProperties/minItems"), 1)),
                )
                .collect(),
        ),
        (
            "a gain is positive and at most MAX_GAIN",
            vec![
                keyword(
                    "/components/schemas/Calibration/properties/gain/exclusiveMinimum",
                    0,
                ),
                keyword(
                    "/components/schemas/Calibration/properties/gain/maximum",
                    MAX_GAIN,
                ),
            ],
        ),
        (
            "started_at lies from EARLIEST_START up to END_OF_STARTS",
            vec![
                says(
                    format!("{CREATE_ECG}/started_at"),
                    EARLIEST_START.format(&Rfc3339).unwrap(),
                ),
                says(
                    format!("{CREATE_ECG}/started_at"),
                    END_OF_STARTS.format(&Rfc3339).unwrap(),
                ),
            ],
        ),
    ];
    assert_in(&doc, &places);
}

/// The next f64 above a positive `x` (`f64::next_up` is newer than the MSRV).
fn above(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

/// The next f64 below a positive `x`.
fn below(x: f64) -> f64 {
    f64::from_bits(x.to_bits() - 1)
}

fn number(doc: &Value, at: &str) -> f64 {
    doc.pointer(at)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {at}"))
}

/// Reads each limit back from the document and checks it against the
/// validator: at the limit accepted, one past it refused.
#[tokio::test]
async fn the_documented_limits_are_the_enforced_ones() {
    let limits = odd_limits();
    let doc = served_document(limits.clone(), odd_upload()).await;
    let names = |n: usize| -> Vec<String> { (0..n).map(|i| format!("L{i}")).collect() };

    let max_leads = number(&doc, &format!("{CREATE_ECG}/leads/maxItems")) as usize;
    assert!(limits.check_header("d", 500.0, &names(max_leads)).is_ok());
    assert!(
        limits
            .check_header("d", 500.0, &names(max_leads + 1))
            .is_err()
    );

    let name_len = number(&doc, &format!("{CREATE_ECG}/leads/items/maxLength")) as usize;
    assert!(
        limits
            .check_header("d", 500.0, &["a".repeat(name_len)])
            .is_ok()
    );
    assert!(
        limits
            .check_header("d", 500.0, &["a".repeat(name_len + 1)])
            .is_err()
    );

    let id_len = number(&doc, &format!("{CREATE_ECG}/device_id/maxLength")) as usize;
    let lead = ["I".to_string()];
    assert!(
        limits
            .check_header(&"d".repeat(id_len), 500.0, &lead)
            .is_ok()
    );
    assert!(
        limits
            .check_header(&"d".repeat(id_len + 1), 500.0, &lead)
            .is_err()
    );

    let min_rate = number(&doc, &format!("{CREATE_ECG}/sample_rate_hz/minimum"));
    let max_rate = number(&doc, &format!("{CREATE_ECG}/sample_rate_hz/maximum"));
    for (rate, ok) in [
        (min_rate, true),
        (max_rate, true),
        (below(min_rate), false),
        (above(max_rate), false),
    ] {
        assert_eq!(limits.check_header("d", rate, &lead).is_ok(), ok, "{rate}");
    }

    let per_lead = number(
        &doc,
        &format!("{CHUNK}/samples/additionalProperties/maxItems"),
    ) as usize;
    let chunk = |n: usize| samples_map(&lead, &[vec![0.0; n]]);
    assert!(
        limits
            .check_samples("/samples", &lead, &chunk(per_lead))
            .is_ok()
    );
    assert!(
        limits
            .check_samples("/samples", &lead, &chunk(per_lead + 1))
            .is_err()
    );

    for at in [
        format!("{CHUNK}/seq"),
        format!("{}/schema", parameter(&doc, CHUNKS, "seq")),
    ] {
        let max_seq = number(&doc, &format!("{at}/maximum")) as u32;
        assert!(limits.check_seq("/seq", max_seq).is_ok());
        assert!(limits.check_seq("/seq", max_seq + 1).is_err());
    }

    let max_gain = number(
        &doc,
        "/components/schemas/Calibration/properties/gain/maximum",
    );
    let adc = |gain: f64| BTreeMap::from([("I".to_string(), Calibration { gain, baseline: 0 })]);
    assert!(limits.check_adc(&lead, &adc(max_gain)).is_ok());
    assert!(limits.check_adc(&lead, &adc(above(max_gain))).is_err());
    assert!(limits.check_adc(&lead, &adc(0.0)).is_err());
}

/// `max_seq` is capped (`seq + 1` must fit a u32): the document says the
/// cap, and `int32` only while every accepted seq fits one.
#[test]
fn seq_is_documented_up_to_the_limit_enforced() {
    let bodies = BodyLimits {
        max_body_bytes: 1,
        max_signal_samples: 1,
        max_buffered_bytes: 1,
        max_buffered_bytes_per_tenant: 1,
        max_buffered_bytes_per_client: 1,
        body_rate: BodyRate::UNLIMITED,
    };
    for (max_seq, documented, format) in [
        (Limits::default().max_seq, i32::MAX as u32, "int32"),
        (u32::MAX, u32::MAX - 1, "int64"),
    ] {
        let doc = document(
            &Limits {
                max_seq,
                ..Limits::default()
            },
            &bodies,
        );
        for at in [
            format!("{CHUNK}/seq"),
            "/components/schemas/EndStream/properties/final_seq".into(),
            format!("{}/schema", parameter(&doc, CHUNKS, "seq")),
        ] {
            assert_eq!(
                doc.pointer(&format!("{at}/maximum")),
                Some(&json!(documented))
            );
            assert_eq!(doc.pointer(&format!("{at}/format")), Some(&json!(format)));
        }
    }
}

/// Arrow IPC bodies are bytes, not a JSON array of numbers; every `/v1`
/// operation lists its 400 (each reads its query, and most a path id).
#[tokio::test]
async fn arrow_bodies_are_binary_and_every_operation_lists_its_400() {
    let doc = served_document(Limits::default(), UploadConfig::default()).await;
    for op in [CHUNKS, SIGNAL] {
        let schema = &doc
            .pointer(&format!(
                "{op}/requestBody/content/application~1vnd.apache.arrow.stream/schema"
            ))
            .unwrap_or_else(|| panic!("{op} takes no Arrow body"));
        let schema = match schema["$ref"].as_str() {
            Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
            None => schema,
        };
        assert_eq!(schema["type"], "string", "{op}: {schema}");
        assert_eq!(schema["format"], "binary", "{op}: {schema}");
    }
    let mut operations = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in methods.as_object().unwrap() {
            operations += 1;
            assert!(
                op["responses"]["400"].is_object(),
                "{method} {path} lacks its 400"
            );
        }
    }
    assert_eq!(operations, 4);
}
