//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`:
//! real chunks as `Chunk::encode` writes them, streams that only a hostile or
//! buggy producer would write (to start the fuzzer near the error paths), and
//! a handful of valid and invalid JSON bodies; and the reproducers of the
//! known round-trip findings into `fuzz/artifacts/chunk_arrow/`.
//!
//! Run from `fuzz/`: `cargo run -p ecg-fuzz-seeds`. The chunks are fixed
//! (ids, times, values), but schema metadata is a `HashMap`, so the order of
//! the keys in the bytes, and with it the files, can change between runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, RecordBatchOptions};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use ecg_schemas::chunk::from_unix_micros;
use ecg_schemas::{Calibration, Chunk, EcgHeader, Signal, Units};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let arrow = root.join("chunk_arrow");
    let json = root.join("chunk_json");
    std::fs::create_dir_all(&arrow)?;
    std::fs::create_dir_all(&json)?;

    for (name, chunk) in chunks() {
        std::fs::write(arrow.join(format!("{name}.arrows")), chunk.encode()?)?;
    }
    for (name, bytes) in hostile_streams()? {
        std::fs::write(arrow.join(format!("{name}.arrows")), bytes)?;
    }
    let artifacts = root.join("../artifacts/chunk_arrow");
    std::fs::create_dir_all(&artifacts)?;
    for (name, bytes) in findings()? {
        std::fs::write(artifacts.join(format!("{name}.arrows")), bytes)?;
    }
    for (name, body) in JSON {
        std::fs::write(json.join(format!("{name}.json")), body)?;
    }
    Ok(())
}

fn header(leads: &[&str]) -> EcgHeader {
    EcgHeader {
        ecg_id: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        tenant: "demo".into(),
        device_id: "example-device".into(),
        sample_rate_hz: 500.0,
        units: Units::Millivolts,
        started_at: from_unix_micros(1_700_000_000_123_456).unwrap(),
        leads: leads.iter().map(|l| l.to_string()).collect(),
    }
}

/// Chunks the gateway could produce, plus a few it refuses but that still
/// encode (non-finite values, no samples), each a valid v1 message.
fn chunks() -> Vec<(&'static str, Chunk)> {
    let twelve = [
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
    ];
    let mut uv = header(&["V1"]);
    uv.units = Units::Microvolts;
    uv.sample_rate_hz = 1000.5;
    uv.started_at = from_unix_micros(-1_234_567).unwrap();
    let mut odd_rate = header(&["II"]);
    odd_rate.sample_rate_hz = f64::NAN;
    vec![
        (
            "two_leads",
            Chunk {
                header: header(&["I", "II"]),
                seq: 0,
                is_final: true,
                samples: Signal::from_vecs(vec![vec![0.1, 0.0, -0.2], vec![0.3, -0.0, 0.1]]),
            },
        ),
        (
            "twelve_leads",
            Chunk {
                header: header(&twelve),
                seq: 41,
                is_final: false,
                samples: Signal::from_vecs(
                    (0..12)
                        .map(|l| {
                            (0..16)
                                .map(|i| f64::from(l * 16 + i) / 7.0 - 10.0)
                                .collect()
                        })
                        .collect(),
                ),
            },
        ),
        (
            "microvolts_specials",
            Chunk {
                header: uv,
                seq: u32::MAX,
                is_final: true,
                samples: Signal::from_vecs(vec![vec![
                    f64::MIN_POSITIVE,
                    f64::MAX,
                    -f64::MAX,
                    5e-324,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NAN,
                ]]),
            },
        ),
        (
            "nan_rate_empty",
            Chunk {
                header: odd_rate,
                seq: 1,
                is_final: false,
                samples: Signal::from_vecs(vec![vec![]]),
            },
        ),
        (
            "digital",
            Chunk {
                header: header(&["I", "II"]),
                seq: 3,
                is_final: false,
                samples: Signal::Digital {
                    adc: vec![
                        vec![1024, 1224, i32::MIN].into(),
                        vec![0, -1, i32::MAX].into(),
                    ],
                    calibration: vec![
                        Calibration {
                            gain: 200.0,
                            baseline: 1024,
                        },
                        Calibration {
                            gain: 1e9,
                            baseline: i32::MIN,
                        },
                    ],
                },
            },
        ),
    ]
}

fn metadata(version: &str, rate: &str) -> HashMap<String, String> {
    [
        ("ecg.format", "ecg-chunk"),
        ("ecg.version", version),
        ("ecg.id", "01234567-89ab-cdef-0123-456789abcdef"),
        ("ecg.tenant", "demo"),
        ("ecg.device_id", "d"),
        ("ecg.sample_rate_hz", rate),
        ("ecg.units", "mV"),
        ("ecg.started_at_us", "0"),
        ("ecg.seq", "+7"),
        ("ecg.final", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn stream(schema: Schema, batches: &[Vec<ArrayRef>], rows: usize) -> Result<Vec<u8>> {
    let schema = Arc::new(schema);
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema)?;
    for columns in batches {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns.clone(), &options)?;
        writer.write(&batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Streams `Chunk::encode` never writes: wrong version, wrong column type,
/// nulls, two batches, no columns, unusual but parseable metadata values.
fn hostile_streams() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let f64s = |v: Vec<Option<f64>>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let one = Schema::new_with_metadata(
        vec![Field::new("I", DataType::Float64, true)],
        metadata("1", "-inf"),
    );
    Ok(vec![
        (
            "version_2",
            stream(
                Schema::new_with_metadata(
                    vec![Field::new("I", DataType::Float64, false)],
                    metadata("2", "500"),
                ),
                &[vec![f64s(vec![Some(1.0)])]],
                1,
            )?,
        ),
        (
            "int_column",
            stream(
                Schema::new_with_metadata(
                    vec![Field::new("I", DataType::Int32, false)],
                    metadata("1", "5e2"),
                ),
                &[vec![Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef]],
                2,
            )?,
        ),
        (
            "null_sample",
            stream(one.clone(), &[vec![f64s(vec![Some(1.0), None])]], 2)?,
        ),
        (
            "two_batches",
            stream(
                one.clone(),
                &[vec![f64s(vec![Some(1.0)])], vec![f64s(vec![Some(2.0)])]],
                1,
            )?,
        ),
        ("no_batch", stream(one, &[], 0)?),
    ])
}

/// Reproducers of the round-trip findings (see README.md), kept out of the
/// corpus because libFuzzer stops at a corpus input that fails.
fn findings() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let f64s = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
    Ok(vec![
        (
            // Decodes to a chunk without leads that `encode` refuses.
            "finding-no-columns",
            stream(
                Schema::new_with_metadata(Vec::<Field>::new(), metadata("1", "500")),
                &[vec![]],
                3,
            )?,
        ),
        (
            // `-NaN` parses to a negative NaN, which `{:?}` writes as `NaN`.
            "finding-negative-nan-rate",
            stream(
                Schema::new_with_metadata(
                    vec![Field::new("I", DataType::Float64, false)],
                    metadata("1", "-NaN"),
                ),
                &[vec![f64s(vec![1.0])]],
                1,
            )?,
        ),
    ])
}

const JSON: &[(&str, &str)] = &[
    (
        "chunk_ok",
        r#"{"seq":0,"samples":{"I":[0.1,-0.2,0.0],"II":[1e-3,-0.0,3]}}"#,
    ),
    (
        "chunk_final",
        r#"{"seq":4294967295,"samples":{"V1":[1.5]},"final":true}"#,
    ),
    (
        "chunk_unequal",
        r#"{"seq":1,"samples":{"I":[1,2],"II":[1]}}"#,
    ),
    (
        "chunk_empty_lead",
        r#"{"seq":1,"samples":{"I":[],"X/~y":[1]}}"#,
    ),
    (
        "chunk_bad_sample",
        r#"{"seq":0,"samples":{"V1":[1.0,"x"]}}"#,
    ),
    (
        "chunk_unknown_field",
        r#"{"seq":0,"samples":{},"sequence":1}"#,
    ),
    (
        "chunk_huge_number",
        r#"{"seq":0,"samples":{"I":[1e400,-1e999]}}"#,
    ),
    ("chunk_trailing", r#"{"seq":0,"samples":{}} x"#),
    (
        "create_ok",
        r#"{"device_id":"holter-7","sample_rate_hz":500,"leads":["I","II"],"units":"uV","started_at":"2026-11-23T01:02:03.123456Z"}"#,
    ),
    (
        "create_signal",
        r#"{"device_id":"d","sample_rate_hz":250.5,"leads":["I","II"],"signal":{"I":[0.1,0.2],"II":[-0.1,0.0]}}"#,
    ),
    (
        "create_bad",
        r#"{"device_id":"d\u0000","sample_rate_hz":0.5,"leads":["I","I","V 1",""],"units":"kV","started_at":"yesterday","signal":null}"#,
    ),
    (
        "create_digital",
        r#"{"device_id":"d","sample_rate_hz":360,"leads":["MLII","V5"],"adc":{"MLII":{"gain":200,"baseline":1024},"V5":{"gain":200.5,"baseline":-3}},"signal":{"MLII":[995,1024,-2147483648],"V5":[2147483647,0,1.5]}}"#,
    ),
    ("create_missing", r#"{"device_id":"d","leads":["I"]}"#),
    (
        "not_json",
        "{\"seq\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\u{ff}",
    ),
];
