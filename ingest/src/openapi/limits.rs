//! Writes the running gateway's limits into its OpenAPI document, so that
//! every limit it enforces on a request is where a client (or a client
//! generator, or schemathesis) looks for it. A limit JSON Schema can say is
//! a keyword (`maximum`, `maxItems`, `maxLength`, `pattern`, ...); the others
//! (bytes, samples of all leads together, ADC counts) are a sentence in the
//! description of the field or body they bound.
//!
//! `tests/openapi_limits.rs` maps every field of [`Limits`] and of
//! [`BodyLimits`] to the places it must appear, and fails to compile when a
//! field is added without a place.

use ecg_schemas::Limits;
use ecg_schemas::validate::{DEVICE_ID_PATTERN, MAX_GAIN};
use serde_json::{Value, json};

use crate::body_rate::BodyRate;

/// The gateway's limits on request bodies as a whole (`[upload]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyLimits {
    /// Largest body of one request but `PUT .../signal`, in bytes
    /// (`upload.max_json_bytes`, JSON, CSV and Arrow alike).
    pub max_body_bytes: usize,
    /// Most samples, all leads together, of one `PUT .../signal`
    /// (`upload.max_signal_samples`).
    pub max_signal_samples: u64,
    /// Bytes of request bodies held at once over all requests
    /// (`upload.max_buffered_bytes`): past it, 503 `busy`.
    pub max_buffered_bytes: usize,
    /// What one tenant's bodies hold at once at most
    /// (`upload.max_buffered_bytes_per_tenant`): past it, 429 `over_share`.
    pub max_buffered_bytes_per_tenant: usize,
    /// What one client's bodies hold at once at most
    /// (`upload.max_buffered_bytes_per_client`): past it, 429 `over_share`.
    pub max_buffered_bytes_per_client: usize,
    /// How fast a body must arrive (`upload.body_*`): slower, 408.
    pub body_rate: BodyRate,
}

/// The operations, as JSON pointers.
pub const CREATE: &str = "/paths/~1v1~1ecgs/post";
pub const CHUNKS: &str = "/paths/~1v1~1ecgs~1{id}~1chunks/post";
pub const END: &str = "/paths/~1v1~1ecgs~1{id}~1end/post";
pub const SIGNAL: &str = "/paths/~1v1~1ecgs~1{id}~1signal/put";

/// Writes `limits` and `bodies` into `doc`, the gateway's generated
/// document.
///
/// # Panics
/// When `doc` lacks a place a limit goes: the document's shape is fixed
/// by the annotations at compile time, and the tests walk every place.
pub fn apply(doc: &mut Value, limits: &Limits, bodies: &BodyLimits) {
    // Every field by name: a new limit does not compile until it has a place.
    let Limits {
        max_leads,
        max_lead_name_len,
        max_device_id_len,
        min_sample_rate_hz,
        max_sample_rate_hz,
        max_chunk_samples,
        max_chunk_values,
        // Documented as the limit enforced, `seq_limit()`.
        max_seq: _,
    } = *limits;
    let BodyLimits {
        max_body_bytes,
        max_signal_samples,
        max_buffered_bytes,
        max_buffered_bytes_per_tenant,
        max_buffered_bytes_per_client,
        body_rate,
    } = *bodies;

    let lead_name = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max_lead_name_len,
        "pattern": limits.lead_name_pattern(),
    });
    let create = "/components/schemas/CreateEcg/properties";
    set(
        doc,
        &format!("{create}/device_id"),
        json!({"minLength": 1, "maxLength": max_device_id_len, "pattern": DEVICE_ID_PATTERN}),
    );
    append(
        doc,
        &format!("{create}/device_id"),
        &format!(
            "1 to {max_device_id_len} bytes of UTF-8, no control characters (`maxLength` counts characters: an id with non-ASCII characters can be refused below it)."
        ),
    );
    set(
        doc,
        &format!("{create}/sample_rate_hz"),
        json!({"minimum": min_sample_rate_hz, "maximum": max_sample_rate_hz}),
    );
    set(
        doc,
        &format!("{create}/leads"),
        json!({"minItems": 1, "maxItems": max_leads, "uniqueItems": true, "items": lead_name}),
    );
    set(
        doc,
        &format!("{create}/adc"),
        json!({"minProperties": 1, "maxProperties": max_leads, "propertyNames": lead_name}),
    );
    set(
        doc,
        "/components/schemas/Calibration/properties/gain",
        json!({"exclusiveMinimum": 0, "maximum": MAX_GAIN}),
    );

    let samples = json!({
        "minProperties": 1,
        "maxProperties": max_leads,
        "propertyNames": lead_name,
    });
    let per_lead = json!({"minItems": 1, "maxItems": max_chunk_samples});
    let samples_rule = format!(
        "1 to {max_chunk_samples} samples per lead, at most {max_chunk_values} all leads together; finite numbers, and for an ECG with `adc` integer ADC counts from {} to {}.",
        i32::MIN,
        i32::MAX
    );
    for map in [
        format!("{create}/signal"),
        "/components/schemas/ChunkRequest/properties/samples".to_string(),
    ] {
        set(doc, &map, samples.clone());
        set(
            doc,
            &format!("{map}/additionalProperties"),
            per_lead.clone(),
        );
        append(doc, &map, &samples_rule);
    }

    // `format: int32` only while every accepted seq fits one.
    let seq_limit = limits.seq_limit();
    let seq_format = if seq_limit <= i32::MAX as u32 {
        "int32"
    } else {
        "int64"
    };
    let seq = json!({"format": seq_format, "minimum": 0, "maximum": seq_limit});
    let seq_param = parameter(doc, CHUNKS, "seq");
    for at in [
        "/components/schemas/ChunkRequest/properties/seq".to_string(),
        "/components/schemas/EndStream/properties/final_seq".to_string(),
        format!("{seq_param}/schema"),
    ] {
        set(doc, &at, seq.clone());
    }

    let body_limit = format!("At most {max_body_bytes} bytes (`upload.max_json_bytes`).");
    let busy = format!(
        "`upload.max_buffered_bytes` is {max_buffered_bytes} bytes; bodies over a client's share of {max_buffered_bytes_per_client} bytes are read one at a time."
    );
    let shares = format!(
        "`upload.max_buffered_bytes_per_tenant` is {max_buffered_bytes_per_tenant} bytes, `upload.max_buffered_bytes_per_client` {max_buffered_bytes_per_client} bytes."
    );
    for op in [CREATE, CHUNKS, END] {
        append(doc, &format!("{op}/requestBody"), &body_limit);
        append(doc, &format!("{op}/responses/413"), &body_limit);
        append(doc, &format!("{op}/responses/503"), &busy);
        append(doc, &format!("{op}/responses/429"), &shares);
    }
    let BodyRate {
        idle,
        min_bytes_per_second,
        grace,
    } = body_rate;
    let too_slow = format!(
        "`upload.body_idle_timeout_ms` is {} ms, `upload.body_min_bytes_per_second` {min_bytes_per_second} bytes/s after `upload.body_rate_grace_ms` of {} ms (0: no such limit).",
        idle.as_millis(),
        grace.as_millis()
    );
    for op in [CREATE, CHUNKS, END, SIGNAL] {
        append(doc, &format!("{op}/responses/408"), &too_slow);
    }
    append(
        doc,
        &format!("{CHUNKS}/requestBody"),
        &format!("In any format, {samples_rule}"),
    );
    let signal_limit = format!(
        "At most {max_signal_samples} samples, all leads together (`upload.max_signal_samples`)."
    );
    append(doc, &format!("{SIGNAL}/requestBody"), &signal_limit);
    append(doc, &format!("{SIGNAL}/responses/413"), &signal_limit);
}

/// Merges `keywords` into the object at `pointer`.
fn set(doc: &mut Value, pointer: &str, keywords: Value) {
    let Some(Value::Object(target)) = doc.pointer_mut(pointer) else {
        panic!("the OpenAPI document has no object at {pointer}");
    };
    if let Value::Object(keywords) = keywords {
        target.extend(keywords);
    }
}

/// Adds `sentence` to the description of the object at `pointer`.
fn append(doc: &mut Value, pointer: &str, sentence: &str) {
    let Some(Value::Object(target)) = doc.pointer_mut(pointer) else {
        panic!("the OpenAPI document has no object at {pointer}");
    };
    let description = match target.get("description").and_then(Value::as_str) {
        Some(text) if text.ends_with('.') => format!("{text} {sentence}"),
        Some(text) if !text.is_empty() => format!("{text}. {sentence}"),
        _ => sentence.to_string(),
    };
    target.insert("description".into(), description.into());
}

/// The pointer to the parameter `name` of the operation at `op`.
pub fn parameter(doc: &Value, op: &str, name: &str) -> String {
    let at = doc
        .pointer(&format!("{op}/parameters"))
        .and_then(Value::as_array)
        .and_then(|params| params.iter().position(|p| p["name"] == name));
    match at {
        Some(i) => format!("{op}/parameters/{i}"),
        None => panic!("the OpenAPI document has no parameter {name} at {op}"),
    }
}
