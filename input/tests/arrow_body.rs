//! The gateway's Arrow path end to end, without the gateway: an Arrow IPC
//! chunk body, read without copying (`tabular::arrow`), checked
//! (`take_signal`) and encoded as the Kafka chunk, keeps every bit of every
//! sample, and every other column type and batch layout gives the chunk it
//! always gave.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int16Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use ecg_input::tabular;
use ecg_schemas::chunk::from_unix_micros;
use ecg_schemas::{Chunk, EcgHeader, Limits, Signal, Units};

fn leads() -> Vec<String> {
    vec!["I".into(), "II".into()]
}

/// An Arrow IPC stream of `batches`, each a list of columns in `leads()`
/// order.
fn body(types: [DataType; 2], batches: Vec<Vec<ArrayRef>>) -> Vec<u8> {
    let fields: Vec<Field> = leads()
        .iter()
        .zip(types)
        // Nullable, so that a test can send a null.
        .map(|(name, t)| Field::new(name, t, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema).unwrap();
    for columns in batches {
        writer
            .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    out
}

/// `bytes` in memory aligned for f64 (a `Buffer` allocates 64-aligned), as
/// hyper's body usually is, plus `offset` bytes of lead-in.
fn aligned(bytes: &[u8], offset: usize) -> Bytes {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    Bytes::from(Buffer::from(padded.as_slice())).slice(offset..)
}

/// The body as the gateway turns it into a Kafka message.
fn chunk_of(body: Bytes) -> Result<Chunk, ecg_schemas::Invalid> {
    let columns = tabular::arrow(body)?;
    let samples = Limits::default().take_signal("/samples", &leads(), None, columns)?;
    Ok(Chunk {
        header: EcgHeader {
            ecg_id: uuid::Uuid::from_u128(7),
            tenant: "demo".into(),
            device_id: "dev".into(),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: from_unix_micros(0).unwrap(),
            leads: leads(),
        },
        seq: 3,
        is_final: false,
        samples,
    })
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Finite values whose bits are easy to lose: signed zeros, subnormals, the
/// extremes, and values that no short decimal prints exactly.
fn awkward() -> [Vec<f64>; 2] {
    [
        vec![-0.0, 0.0, 5e-324, -5e-324, f64::MIN_POSITIVE, f64::MAX],
        vec![
            -f64::MAX,
            0.1 + 0.2,
            f64::from_bits(0x3ff0_0000_0000_0001),
            1e-310,
            -1.0,
            1.0 / 3.0,
        ],
    ]
}

#[test]
fn one_float64_batch_keeps_every_bit_to_the_kafka_message() {
    let [a, b] = awkward();
    let raw = body(
        [DataType::Float64, DataType::Float64],
        vec![vec![
            Arc::new(Float64Array::from(a.clone())),
            Arc::new(Float64Array::from(b.clone())),
        ]],
    );
    // Aligned (read in place) and misaligned (copied once) bodies alike.
    for offset in [0, 1, 4] {
        let body = aligned(&raw, offset);
        let chunk = chunk_of(body.clone()).unwrap();
        let Signal::Physical(columns) = &chunk.samples else {
            panic!("physical samples expected");
        };
        assert_eq!(bits(&columns[0]), bits(&a), "offset {offset}");
        assert_eq!(bits(&columns[1]), bits(&b), "offset {offset}");
        let inside = body
            .as_ptr_range()
            .contains(&columns[0].as_ptr().cast::<u8>());
        assert_eq!(inside, offset == 0, "lead I read in place: offset {offset}");
        let back = Chunk::decode(&chunk.encode().unwrap()).unwrap();
        let Signal::Physical(decoded) = &back.samples else {
            panic!("physical samples expected");
        };
        assert_eq!(bits(&decoded[0]), bits(&a));
        assert_eq!(bits(&decoded[1]), bits(&b));
        assert_eq!(back, chunk);
    }
}

#[test]
fn non_finite_samples_in_an_arrow_body_are_refused_by_position() {
    for bad in [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let raw = body(
            [DataType::Float64, DataType::Float64],
            vec![vec![
                Arc::new(Float64Array::from(vec![0.5, -0.0, 1.0])),
                Arc::new(Float64Array::from(vec![0.5, 2.0, bad])),
            ]],
        );
        let err = chunk_of(aligned(&raw, 0)).unwrap_err();
        assert_eq!(err.field, "/samples/II/2", "{bad}");
        assert!(err.message.contains("finite"), "{}", err.message);
    }
}

#[test]
fn several_batches_and_narrow_types_give_the_same_chunk_as_plain_vectors() {
    let raw = body(
        [DataType::Float32, DataType::Int16],
        vec![
            vec![
                Arc::new(Float32Array::from(vec![0.5, -0.0])),
                Arc::new(Int16Array::from(vec![1, -2])),
            ],
            vec![
                Arc::new(Float32Array::from(vec![f32::MAX])),
                Arc::new(Int16Array::from(vec![i16::MIN])),
            ],
        ],
    );
    // Several Float64 batches are concatenated the same way.
    let raw64 = body(
        [DataType::Float64, DataType::Float64],
        vec![
            vec![
                Arc::new(Float64Array::from(vec![0.5, -0.0])),
                Arc::new(Float64Array::from(vec![1.0, -2.0])),
            ],
            vec![
                Arc::new(Float64Array::from(vec![f64::from(f32::MAX)])),
                Arc::new(Float64Array::from(vec![-32768.0])),
            ],
        ],
    );
    let expected = vec![
        vec![0.5, -0.0, f64::from(f32::MAX)],
        vec![1.0, -2.0, -32768.0],
    ];
    for (raw, offset) in [(&raw, 0), (&raw, 3), (&raw64, 0)] {
        let chunk = chunk_of(aligned(raw, offset)).unwrap();
        let Signal::Physical(columns) = &chunk.samples else {
            panic!("physical samples expected");
        };
        for (got, want) in columns.iter().zip(&expected) {
            assert_eq!(bits(got), bits(want));
        }
        let mut plain = chunk.clone();
        plain.samples = Signal::from_vecs(expected.clone());
        let back = Chunk::decode(&chunk.encode().unwrap()).unwrap();
        assert_eq!(back, plain);
        assert_eq!(
            Chunk::decode(&plain.encode().unwrap()).unwrap(),
            back,
            "the same Kafka message"
        );
    }
}

#[test]
fn arrow_body_errors_are_unchanged() {
    let nulls = body(
        [DataType::Float64, DataType::Float64],
        vec![
            vec![
                Arc::new(Float64Array::from(vec![1.0])),
                Arc::new(Float64Array::from(vec![1.0])),
            ],
            vec![
                Arc::new(Float64Array::from(vec![Some(1.0), None])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        ],
    );
    let err = tabular::arrow(Bytes::from(nulls)).unwrap_err();
    assert_eq!(err.field, "/samples/I/2");
    assert!(err.message.contains("null sample"), "{}", err.message);

    let schema = Arc::new(Schema::new(vec![
        Field::new("I", DataType::Float64, false),
        Field::new("I", DataType::Float64, false),
    ]));
    let column: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
    let mut twice = Vec::new();
    let mut w = StreamWriter::try_new(&mut twice, &schema).unwrap();
    w.write(&RecordBatch::try_new(schema.clone(), vec![column.clone(), column]).unwrap())
        .unwrap();
    w.finish().unwrap();
    drop(w);
    let err = tabular::arrow(Bytes::from(twice)).unwrap_err();
    assert!(err.message.contains("appears twice"), "{}", err.message);

    // Cut inside the second message: the structural check refuses it first.
    let mut cut = body(
        [DataType::Float64, DataType::Float64],
        vec![vec![
            Arc::new(Float64Array::from(vec![1.0])),
            Arc::new(Float64Array::from(vec![1.0])),
        ]],
    );
    cut.truncate(cut.len() - 20);
    let err = tabular::arrow(Bytes::from(cut)).unwrap_err();
    assert!(
        err.message.contains("malformed Arrow IPC stream"),
        "{}",
        err.message
    );
}
