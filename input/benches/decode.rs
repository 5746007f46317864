//! Decoder throughput: `cargo bench -p ecg-input --bench decode`.
//! Prints samples per second (all leads together; best and median of five
//! rounds) for each format the gateway reads and for the Kafka chunk format
//! the processor reads, on a 12-lead chunk of 2,000 samples per lead of
//! ECG-like values.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use ecg_input::{json, tabular};
use ecg_schemas::api::ChunkRequest;
use ecg_schemas::samples::lead_columns;
use ecg_schemas::{Chunk, EcgHeader, Limits, Signal, Units};

const LEADS: usize = 12;
const SAMPLES: usize = 2_000;

fn leads() -> Vec<String> {
    [
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// ECG-like millivolts rounded to `decimals` places (5: 5 significant
/// digits, as devices send them).
fn signal(decimals: i32) -> Vec<Vec<f64>> {
    let scale = 10f64.powi(decimals);
    (0..LEADS)
        .map(|l| {
            (0..SAMPLES)
                .map(|i| {
                    let t = i as f64 / 500.0;
                    let v = 1.2 * (t * 7.0 + l as f64).sin() + 0.05 * (t * 331.0).cos();
                    (v * scale).round() / scale
                })
                .collect()
        })
        .collect()
}

/// Runs `f` for about a second in rounds of 0.2 s and prints samples per
/// second of the best round and of the median one. On a shared machine the
/// best round is the closest to what the code costs; the median shows how
/// much the other load takes. `ECG_BENCH_FILTER=json` runs only the cases
/// whose name contains `json` (case-insensitive).
fn measure(name: &str, bytes: usize, mut f: impl FnMut()) {
    if let Ok(filter) = std::env::var("ECG_BENCH_FILTER") {
        if !name.to_lowercase().contains(&filter.to_lowercase()) {
            return;
        }
    }
    f(); // warm up
    let mut per_run: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut runs = 0u32;
            while start.elapsed() < Duration::from_millis(200) {
                f();
                runs += 1;
            }
            start.elapsed().as_secs_f64() / f64::from(runs)
        })
        .collect();
    per_run.sort_by(f64::total_cmp);
    let (best, median) = (per_run[0], per_run[per_run.len() / 2]);
    let samples = (LEADS * SAMPLES) as f64;
    println!(
        "{name:<44} {:>8.1} M samples/s {:>8.1} MB/s  (median round {:.1} M/s; {bytes} bytes per chunk)",
        samples / best / 1e6,
        bytes as f64 / best / 1e6,
        samples / median / 1e6,
    );
}

fn main() {
    let leads = leads();
    let signal_6 = signal(6);
    let signal = signal(5);
    let limits = Limits::default();
    let samples: ecg_schemas::samples::Samples =
        leads.iter().cloned().zip(signal.iter().cloned()).collect();

    let json_body = serde_json::to_vec(&ChunkRequest {
        seq: 0,
        samples: samples.clone(),
        r#final: false,
    })
    .unwrap();
    measure(
        "JSON chunk body -> validated samples",
        json_body.len(),
        || {
            let req = json::decode_chunk(black_box(&json_body)).unwrap();
            black_box(
                limits
                    .take_signal("/samples", &leads, None, lead_columns(req.samples))
                    .unwrap(),
            );
        },
    );

    assert!(
        json::fast::chunk(&json_body).is_some(),
        "the fast path must take the benchmark body: {}",
        String::from_utf8_lossy(&json_body[..200])
    );
    measure(
        "JSON chunk body, parse only (fast path)",
        json_body.len(),
        || {
            black_box(json::decode_chunk(black_box(&json_body)).unwrap());
        },
    );
    measure(
        "JSON chunk body, parse only (serde)",
        json_body.len(),
        || {
            black_box(json::decode::<ChunkRequest>(black_box(&json_body)).unwrap());
        },
    );

    // Six decimals: "-0.123456" is 9 bytes, past the one-word fast path.
    let samples_6: ecg_schemas::samples::Samples = leads.iter().cloned().zip(signal_6).collect();
    let json_body_6 = serde_json::to_vec(&ChunkRequest {
        seq: 0,
        samples: samples_6,
        r#final: false,
    })
    .unwrap();
    measure(
        "JSON chunk body, 6 decimals -> validated",
        json_body_6.len(),
        || {
            let req = json::decode_chunk(black_box(&json_body_6)).unwrap();
            black_box(
                limits
                    .take_signal("/samples", &leads, None, lead_columns(req.samples))
                    .unwrap(),
            );
        },
    );

    let mut csv_body = format!("time,{}\n", leads.join(","));
    for i in 0..SAMPLES {
        csv_body.push_str(&format!("{:.3}", i as f64 / 500.0));
        for lead in &signal {
            csv_body.push_str(&format!(",{:?}", lead[i]));
        }
        csv_body.push('\n');
    }
    measure(
        "CSV chunk body -> validated samples",
        csv_body.len(),
        || {
            let s = tabular::csv(black_box(csv_body.as_bytes()), &leads, 500.0).unwrap();
            black_box(limits.take_signal("/samples", &leads, None, s).unwrap());
        },
    );

    let fields: Vec<Field> = leads
        .iter()
        .map(|l| Field::new(l, DataType::Float64, false))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let columns: Vec<ArrayRef> = signal
        .iter()
        .map(|l| Arc::new(Float64Array::from(l.clone())) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut arrow_body = Vec::new();
    let mut writer = StreamWriter::try_new(&mut arrow_body, &schema).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    // As the gateway holds a request body (`bytes::Bytes`); cloning it is a
    // reference count, not a copy.
    let arrow_body = bytes::Bytes::from(arrow_body);
    measure(
        "Arrow IPC chunk body -> validated samples",
        arrow_body.len(),
        || {
            let s = tabular::arrow(black_box(arrow_body.clone())).unwrap();
            black_box(limits.take_signal("/samples", &leads, None, s).unwrap());
        },
    );

    let chunk = Chunk {
        header: EcgHeader {
            ecg_id: uuid::Uuid::nil(),
            tenant: "demo".into(),
            device_id: "bench".into(),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            leads: leads.clone(),
        },
        seq: 0,
        is_final: false,
        samples: Signal::from_vecs(signal.clone()),
    };
    let message = chunk.encode().unwrap();
    // The gateway's whole Arrow path: body -> checked signal -> Kafka bytes.
    measure(
        "Arrow IPC chunk body -> encoded chunk",
        arrow_body.len(),
        || {
            let s = tabular::arrow(black_box(arrow_body.clone())).unwrap();
            let samples = limits.take_signal("/samples", &leads, None, s).unwrap();
            let chunk = Chunk {
                header: chunk.header.clone(),
                seq: 0,
                is_final: false,
                samples,
            };
            black_box(chunk.encode().unwrap());
        },
    );
    measure("Kafka chunk (Arrow IPC) encode", message.len(), || {
        black_box(black_box(&chunk).encode().unwrap());
    });
    measure(
        "Kafka chunk (Arrow IPC) decode + check",
        message.len(),
        || {
            let c = Chunk::decode(black_box(&message)).unwrap();
            limits.check_chunk(&c).unwrap();
            black_box(c);
        },
    );
}
