//! [`Chunk`]: one piece of one ECG as it travels through Kafka, and its
//! encoding.
//!
//! A Kafka message value is one Arrow IPC *stream* holding exactly one record
//! batch: one non-null column per lead, in the ECG's lead order, one row per
//! sample instant: `Float64` for physical samples, or `Int32` ADC counts whose
//! field metadata carries the lead's calibration (`ecg.adc_gain`,
//! `ecg.adc_baseline`). Everything else rides in the schema's metadata
//! under `ecg.*` keys, so the message is self-describing for consumers in any
//! language (see `schemas/README.md`). The key is the ECG id, so all chunks of
//! one ECG land in one partition, in the order they were produced.
//!
//! Versioning: `ecg.format` must be `ecg-chunk` and `ecg.version` must be a
//! version this build knows ([`FORMAT_VERSION`]); anything else is a
//! [`DecodeError`] that the processor dead-letters rather than guessing.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Units;
use crate::samples::{Calibration, Signal};

/// The value of `ecg.format`.
pub const FORMAT: &str = "ecg-chunk";
/// The version this build writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// What every chunk of an ECG repeats about the ECG, so the processor needs
/// nothing but the message.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgHeader {
    pub ecg_id: Uuid,
    /// The owner, from the submitting client's token.
    pub tenant: String,
    pub device_id: String,
    pub sample_rate_hz: f64,
    pub units: Units,
    /// Time of sample 0 of the ECG, microsecond precision.
    pub started_at: OffsetDateTime,
    /// Lead names, in column order.
    pub leads: Vec<String>,
}

/// One chunk: a contiguous run of samples of every lead of one ECG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub header: EcgHeader,
    /// Position in the ECG, from 0 without gaps.
    pub seq: u32,
    /// True on the ECG's last chunk.
    pub is_final: bool,
    /// One buffer per lead, in `header.leads` order, all the same length.
    pub samples: Signal,
}

/// Why a message could not be read as a chunk.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an Arrow IPC stream: {0}")]
    Arrow(#[from] ArrowError),
    #[error("the stream holds {0} record batches; a chunk is exactly one")]
    BatchCount(usize),
    #[error("missing metadata key {0:?}")]
    MissingKey(&'static str),
    #[error("metadata key {key:?} has an invalid value {value:?}")]
    BadValue { key: &'static str, value: String },
    #[error(
        "unsupported chunk format {format:?} version {version:?}; this build reads {FORMAT:?} version {FORMAT_VERSION}"
    )]
    UnsupportedVersion { format: String, version: String },
    #[error(
        "column {0:?} is neither a non-null Float64 column nor a non-null Int32 column with a valid calibration"
    )]
    BadColumn(String),
    #[error("columns mix physical (Float64) and digital (Int32) samples")]
    MixedColumns,
    #[error("malformed Arrow IPC stream: {0}")]
    Malformed(String),
    #[error("the chunk has no lead columns")]
    NoLeads,
}

impl Chunk {
    /// The end mark of a stream: a message with no samples, marked final,
    /// whose seq is the ECG's last chunk (sent by `POST /v1/ecgs/{id}/end`
    /// for a stream whose last chunk went out unmarked). It is not a chunk
    /// of samples: the processor records the final seq and stores nothing.
    pub fn end_mark(header: EcgHeader, final_seq: u32) -> Chunk {
        let samples = Signal::from_vecs(vec![Vec::new(); header.leads.len()]);
        Chunk {
            header,
            seq: final_seq,
            is_final: true,
            samples,
        }
    }

    /// An end mark (see [`Chunk::end_mark`]): no samples, marked final.
    pub fn is_end_mark(&self) -> bool {
        self.is_final && self.is_empty()
    }

    /// Samples per lead in this chunk.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes the chunk as one Arrow IPC stream.
    pub fn encode(&self) -> Result<Vec<u8>, ArrowError> {
        self.encode_as(FORMAT_VERSION)
    }

    fn encode_as(&self, version: u32) -> Result<Vec<u8>, ArrowError> {
        let batch = self.batch(version)?;
        let mut out = Vec::with_capacity(encoded_len_bound(&batch));
        let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    }

    /// The chunk as one record batch whose schema carries the metadata.
    fn batch(&self, version: u32) -> Result<RecordBatch, ArrowError> {
        let h = &self.header;
        let metadata = HashMap::from([
            ("ecg.format".to_string(), FORMAT.to_string()),
            ("ecg.version".to_string(), version.to_string()),
            ("ecg.id".to_string(), h.ecg_id.to_string()),
            ("ecg.tenant".to_string(), h.tenant.clone()),
            ("ecg.device_id".to_string(), h.device_id.clone()),
            // `{:?}` on f64 prints the shortest string that parses back
            // to the same value, so a finite rate round-trips exactly
            // (decode refuses the others).
            (
                "ecg.sample_rate_hz".to_string(),
                format!("{:?}", h.sample_rate_hz),
            ),
            ("ecg.units".to_string(), h.units.as_str().to_string()),
            (
                "ecg.started_at_us".to_string(),
                unix_micros(h.started_at).to_string(),
            ),
            ("ecg.seq".to_string(), self.seq.to_string()),
            ("ecg.final".to_string(), self.is_final.to_string()),
        ]);
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = match &self.samples {
            Signal::Physical(leads) => h
                .leads
                .iter()
                .zip(leads)
                .map(|(name, values)| {
                    // Shares the samples' buffer: the writer below is the
                    // only copy of them on the way to Kafka.
                    let column = Arc::new(Float64Array::new(values.clone(), None)) as ArrayRef;
                    (Field::new(name, DataType::Float64, false), column)
                })
                .unzip(),
            Signal::Digital { adc, calibration } => h
                .leads
                .iter()
                .zip(adc.iter().zip(calibration))
                .map(|(name, (counts, c))| {
                    let field =
                        Field::new(name, DataType::Int32, false).with_metadata(HashMap::from([
                            ("ecg.adc_gain".to_string(), format!("{:?}", c.gain)),
                            ("ecg.adc_baseline".to_string(), c.baseline.to_string()),
                        ]));
                    let column = Arc::new(Int32Array::new(counts.clone(), None)) as ArrayRef;
                    (field, column)
                })
                .unzip(),
        };
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        RecordBatch::try_new(schema, columns)
    }

    /// Decodes one Kafka message value.
    pub fn decode(bytes: &[u8]) -> Result<Chunk, DecodeError> {
        let len = crate::ipc::check_stream(bytes).map_err(DecodeError::Malformed)?;
        // One copy, into an aligned buffer that the columns then share (a
        // `StreamReader` would zero a buffer per message and copy into it).
        let stream = crate::ipc::read_stream(Buffer::from(&bytes[..len]))?;
        let schema = stream.schema;
        let meta = schema.metadata();
        let get = |key: &'static str| meta.get(key).ok_or(DecodeError::MissingKey(key));
        let format = meta.get("ecg.format").cloned().unwrap_or_default();
        let version = meta.get("ecg.version").cloned().unwrap_or_default();
        if format != FORMAT || version != FORMAT_VERSION.to_string() {
            return Err(DecodeError::UnsupportedVersion { format, version });
        }
        let header = EcgHeader {
            ecg_id: parse(get("ecg.id")?, "ecg.id")?,
            tenant: get("ecg.tenant")?.clone(),
            device_id: get("ecg.device_id")?.clone(),
            sample_rate_hz: parse(get("ecg.sample_rate_hz")?, "ecg.sample_rate_hz")?,
            units: Units::parse(get("ecg.units")?).ok_or_else(|| DecodeError::BadValue {
                key: "ecg.units",
                value: meta["ecg.units"].clone(),
            })?,
            started_at: from_unix_micros(parse(get("ecg.started_at_us")?, "ecg.started_at_us")?)
                .ok_or_else(|| DecodeError::BadValue {
                    key: "ecg.started_at_us",
                    value: meta["ecg.started_at_us"].clone(),
                })?,
            leads: schema.fields().iter().map(|f| f.name().clone()).collect(),
        };
        if header.leads.is_empty() {
            return Err(DecodeError::NoLeads);
        }
        if !header.sample_rate_hz.is_finite() {
            return Err(DecodeError::BadValue {
                key: "ecg.sample_rate_hz",
                value: meta["ecg.sample_rate_hz"].clone(),
            });
        }
        let seq = parse(get("ecg.seq")?, "ecg.seq")?;
        let is_final = parse(get("ecg.final")?, "ecg.final")?;
        if let Some(e) = stream.unreadable {
            return Err(e.into());
        }
        let batches = stream.batches;
        if batches.len() != 1 {
            return Err(DecodeError::BatchCount(batches.len()));
        }
        let batch = &batches[0];
        let samples = decode_columns(batch, &header.leads)?;
        Ok(Chunk {
            header,
            seq,
            is_final,
            samples,
        })
    }
}

/// Reads the lead columns: all Float64 (physical) or all Int32 with a
/// calibration each (digital).
fn decode_columns(batch: &RecordBatch, leads: &[String]) -> Result<Signal, DecodeError> {
    let schema = batch.schema();
    let digital = schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Int32);
    if !digital {
        let physical = batch
            .columns()
            .iter()
            .zip(leads)
            .map(|(col, lead)| {
                let col = col
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .filter(|c| c.null_count() == 0)
                    .ok_or_else(|| DecodeError::BadColumn(lead.clone()))?;
                Ok(col.values().clone())
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        return Ok(Signal::Physical(physical));
    }
    let mut adc = Vec::with_capacity(leads.len());
    let mut calibration = Vec::with_capacity(leads.len());
    for ((col, field), lead) in batch.columns().iter().zip(schema.fields()).zip(leads) {
        if field.data_type() != &DataType::Int32 {
            return Err(DecodeError::MixedColumns);
        }
        let col = col
            .as_any()
            .downcast_ref::<Int32Array>()
            .filter(|c| c.null_count() == 0)
            .ok_or_else(|| DecodeError::BadColumn(lead.clone()))?;
        let meta = field.metadata();
        let gain = meta
            .get("ecg.adc_gain")
            .and_then(|g| g.parse::<f64>().ok())
            .filter(|g| g.is_finite());
        let baseline = meta
            .get("ecg.adc_baseline")
            .and_then(|b| b.parse::<i32>().ok());
        let (Some(gain), Some(baseline)) = (gain, baseline) else {
            return Err(DecodeError::BadColumn(lead.clone()));
        };
        adc.push(col.values().clone());
        calibration.push(Calibration { gain, baseline });
    }
    Ok(Signal::Digital { adc, calibration })
}

/// At least the length of the IPC stream of `batch`, so that the encoder's
/// output never reallocates (each reallocation copies every sample again).
/// Flatbuffer tables, vtables and alignment cost well under the allowances
/// here; `encode_reserves_enough` checks the widest chunks.
fn encoded_len_bound(batch: &RecordBatch) -> usize {
    let schema = batch.schema_ref();
    let entry = |(k, v): (&String, &String)| k.len() + v.len() + 32;
    let schema_message = 512
        + schema.metadata().iter().map(entry).sum::<usize>()
        + schema
            .fields()
            .iter()
            .map(|f| 128 + f.name().len() + f.metadata().iter().map(entry).sum::<usize>())
            .sum::<usize>();
    // Per column: a field node, two buffer entries, up to 7 bytes of padding
    // after each of its buffers.
    let batch_message = 512 + batch.num_columns() * (16 + 2 * 16 + 2 * 8);
    // Values of at most 8 bytes (f64, i32); counted from the rows, as a
    // column's buffer may be a slice of a larger one.
    let data = batch.num_rows() * batch.num_columns() * 8;
    // Two continuation markers and lengths, and the end-of-stream marker.
    schema_message + batch_message + data + 3 * 8
}

fn parse<T: std::str::FromStr>(value: &str, key: &'static str) -> Result<T, DecodeError> {
    value.parse().map_err(|_| DecodeError::BadValue {
        key,
        value: value.to_string(),
    })
}

/// Microseconds since the Unix epoch.
pub fn unix_micros(t: OffsetDateTime) -> i64 {
    // An i64 of microseconds spans ±292,000 years: the cast cannot truncate
    // for any time `time` can represent by default (±9999 years).
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The time `micros` microseconds after the Unix epoch, in UTC.
pub fn from_unix_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chunk {
        Chunk {
            header: EcgHeader {
                ecg_id: Uuid::from_u128(0x1234),
                tenant: "demo".into(),
                device_id: "dev-1".into(),
                sample_rate_hz: 499.9,
                units: Units::Millivolts,
                started_at: from_unix_micros(1_700_000_000_123_456).unwrap(),
                leads: vec!["I".into(), "aVR".into()],
            },
            seq: 7,
            is_final: true,
            samples: Signal::from_vecs(vec![
                vec![1.5, -0.0, 0.0],
                vec![f64::MIN_POSITIVE, -2.0, 3.0],
            ]),
        }
    }

    #[test]
    fn chunk_round_trips_exactly() {
        let chunk = sample();
        let back = Chunk::decode(&chunk.encode().unwrap()).unwrap();
        assert_eq!(back, chunk);
        // -0.0 == 0.0, so check the sign bit survived too.
        assert!(back.samples.physical(0)[1].is_sign_negative());
    }

    #[test]
    fn digital_chunk_round_trips_counts_and_calibration() {
        let mut chunk = sample();
        chunk.samples = Signal::Digital {
            adc: vec![
                vec![i32::MIN, 0, 1024].into(),
                vec![i32::MAX, -5, 1023].into(),
            ],
            calibration: vec![
                Calibration {
                    gain: 200.0,
                    baseline: 1024,
                },
                Calibration {
                    gain: 0.1,
                    baseline: -7,
                },
            ],
        };
        assert_eq!(Chunk::decode(&chunk.encode().unwrap()).unwrap(), chunk);
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let future = sample().encode_as(9).unwrap();
        let err = Chunk::decode(&future).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnsupportedVersion { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version \"9\""), "{err}");
    }

    #[test]
    fn fuzzer_findings_are_errors_not_panics() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/artifacts/chunk_arrow/"
        );
        for (file, expect) in [
            ("finding-arrow-buffer-outside-body.arrows", "outside"),
            ("finding-no-columns.arrows", "no lead columns"),
            ("finding-negative-nan-rate.arrows", "sample_rate_hz"),
            (
                "finding-arrow-union-type-ids.arrows",
                "only flat integer and floating-point",
            ),
        ] {
            let bytes = std::fs::read(format!("{dir}{file}")).unwrap();
            let err = Chunk::decode(&bytes).unwrap_err().to_string();
            assert!(err.contains(expect), "{file}: {err}");
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            Chunk::decode(b"not arrow at all"),
            Err(DecodeError::Malformed(_) | DecodeError::Arrow(_))
        ));
        assert!(Chunk::decode(&[]).is_err());
    }

    #[test]
    fn encode_reserves_enough() {
        let name = |i: usize| format!("lead-{i:0>11}"); // 16 bytes, the limit
        let mut wide = sample();
        wide.header.tenant = "t".repeat(200);
        wide.header.device_id = "d".repeat(128);
        wide.header.leads = (0..32).map(name).collect();
        wide.samples = Signal::from_vecs(vec![vec![-0.0; 3_750]; 32]);
        let mut digital = wide.clone();
        digital.samples = Signal::Digital {
            adc: vec![vec![i32::MIN; 3_750].into(); 32],
            calibration: vec![
                Calibration {
                    gain: 0.1 + f64::EPSILON,
                    baseline: i32::MIN,
                };
                32
            ],
        };
        let mut tiny = sample();
        tiny.header.leads.truncate(1);
        tiny.samples = Signal::from_vecs(vec![vec![1.0]]);
        for chunk in [sample(), wide, digital, tiny] {
            let bound = encoded_len_bound(&chunk.batch(FORMAT_VERSION).unwrap());
            let len = chunk.encode().unwrap().len();
            assert!(len <= bound, "{len} bytes encoded, {bound} reserved");
        }
    }

    #[test]
    fn micros_round_trip() {
        let t = from_unix_micros(-1_234_567).unwrap();
        assert_eq!(unix_micros(t), -1_234_567);
    }
}
