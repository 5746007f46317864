//! Chunk bodies in the formats devices and their gateways produce, besides
//! JSON: CSV and Arrow IPC streams. Each decoder yields the same lead-to-
//! samples map as the JSON body ([`LeadColumns`]), so every format goes
//! through the same validation (`Limits::take_signal`) and nothing
//! format-specific reaches Kafka.
//!
//! - `text/csv`: a header line of lead names, then one line per sample
//!   instant. The first column may instead be a time column, named as one
//!   ([`TIME_COLUMNS`]: `t`, `time`, `seconds`, `t_s`, `time_s` in seconds,
//!   `t_ms`, `time_ms` in milliseconds): its values must step by one
//!   sample period a line (`TimeColumn`) and are otherwise ignored. Any
//!   other column that is not a declared lead is refused, naming it: a lead
//!   is never dropped without a word.
//! - `application/vnd.apache.arrow.stream`: one column per lead, named by
//!   the lead, non-null, of a numeric type that converts to `f64` exactly
//!   (Float64, Float32, Int8/16/32, UInt8/16/32); any number of batches.
//!   A stream of one batch of Float64 columns is not copied: each lead is a
//!   slice of the request body (copied once if the body is misaligned for
//!   f64). Other types and several batches are converted or concatenated
//!   into one new buffer per lead. A body of integer columns can also be
//!   read as integers ([`arrow_columns`]): the ADC counts of a digital ECG
//!   then skip `f64`, and one batch of Int32 columns is not copied either.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, UInt8Type,
    UInt16Type, UInt32Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_schema::DataType;
use bytes::Bytes;

use ecg_schemas::Invalid;
use ecg_schemas::ipc;
use ecg_schemas::samples::{Columns, LeadColumns};
use ecg_schemas::validate::escape;

/// Content type of Arrow IPC stream bodies.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Content type of CSV bodies.
pub const CSV: &str = "text/csv";

/// Names a CSV column may have to be read as time (ASCII case ignored),
/// and their unit in seconds.
pub const TIME_COLUMNS: [(&str, f64); 7] = [
    ("t", 1.0),
    ("time", 1.0),
    ("seconds", 1.0),
    ("t_s", 1.0),
    ("time_s", 1.0),
    ("t_ms", 1e-3),
    ("time_ms", 1e-3),
];

/// The unit in seconds of a time column named `name`, if it is named as
/// one ([`TIME_COLUMNS`]).
pub fn time_column_unit(name: &str) -> Option<f64> {
    TIME_COLUMNS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, unit)| unit)
}

/// The time column of a CSV body. Its values must be numbers that step by
/// one sample period (`1 / sample_rate_hz`) a line: the value of line `i`
/// lies within half a period of `first + i / sample_rate_hz`. Half a
/// period, because times are printed rounded (360 Hz in milliseconds
/// steps by 3, 3, 2 ms) and because a time off by half a sample or more
/// says the declared rate, or the order of the lines, is wrong.
#[derive(Debug, Clone)]
pub(crate) struct TimeColumn {
    name: String,
    /// One sample period in the column's unit.
    period: f64,
    unit: &'static str,
    sample_rate_hz: f64,
    /// The first time and its line's index in the signal.
    first: Option<(f64, u64)>,
}

impl TimeColumn {
    /// The time column named `name` of an ECG sampled at `sample_rate_hz`,
    /// or `None` when the name is not a time column's.
    pub(crate) fn new(name: &str, sample_rate_hz: f64) -> Option<Self> {
        let unit = time_column_unit(name)?;
        Some(TimeColumn {
            name: name.to_string(),
            period: 1.0 / sample_rate_hz / unit,
            unit: if unit == 1.0 { "s" } else { "ms" },
            sample_rate_hz,
            first: None,
        })
    }

    /// Checks the time of the sample at `index` in the signal, on CSV line
    /// `line`.
    pub(crate) fn check(&mut self, field: &[u8], index: u64, line: u64) -> Result<(), Invalid> {
        let at = || format!("/samples/{}/{index}", escape(&self.name));
        let Some(time) = crate::number::parse_f64(field).filter(|t| t.is_finite()) else {
            return Err(Invalid::new(
                at(),
                format!(
                    "CSV line {line}: time {:?} is not a number",
                    String::from_utf8_lossy(field)
                ),
            ));
        };
        let (first, first_index) = *self.first.get_or_insert((time, index));
        let expected = first + (index - first_index) as f64 * self.period;
        if (time - expected).abs() > self.period / 2.0 {
            return Err(Invalid::new(
                at(),
                format!(
                    "CSV line {line}: time {time} {unit} is not {expected} {unit}; the time column {name:?} must step by one sample period ({period} {unit} at the declared {rate} Hz) a line, within half a period",
                    unit = self.unit,
                    name = self.name,
                    period = self.period,
                    rate = self.sample_rate_hz,
                ),
            ));
        }
        Ok(())
    }
}

/// A CSV column that is neither a declared lead nor the time column.
pub(crate) fn unknown_column(name: &str, leads: &[String]) -> Invalid {
    let times: Vec<&str> = TIME_COLUMNS.iter().map(|(n, _)| *n).collect();
    Invalid::new(
        format!("/samples/{}", escape(name)),
        format!(
            "CSV column {name:?} is not a lead of this ECG ({leads:?}); only the first column may be something else, a time column named {times:?}"
        ),
    )
}

/// Reads a CSV chunk body whose columns are `leads` (in any order), with an
/// optional leading time column checked against `sample_rate_hz`.
pub fn csv(body: &[u8], leads: &[String], sample_rate_hz: f64) -> Result<LeadColumns, Invalid> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| Invalid::new("", format!("unreadable CSV header: {e}")))?
        .clone();
    let names: Vec<&str> = headers.iter().collect();
    let mut time = None;
    for (i, name) in names.iter().enumerate() {
        if leads.iter().any(|l| l == name) {
            continue;
        }
        match TimeColumn::new(name, sample_rate_hz) {
            Some(column) if i == 0 && names.len() > 1 => time = Some(column),
            _ => return Err(unknown_column(name, leads)),
        }
    }
    let skip_time = time.is_some();
    let columns: Vec<&str> = names[usize::from(skip_time)..].to_vec();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
    for (row, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| Invalid::new("", format!("unreadable CSV line {}: {e}", row + 2)))?;
        if record.len() != names.len() {
            return Err(Invalid::new(
                "",
                format!(
                    "CSV line {} has {} fields, the header has {}",
                    row + 2,
                    record.len(),
                    names.len()
                ),
            ));
        }
        if let Some(time) = &mut time {
            time.check(record[0].as_bytes(), row as u64, row as u64 + 2)?;
        }
        for (i, field) in record.iter().skip(usize::from(skip_time)).enumerate() {
            let value = crate::number::parse_f64(field.as_bytes()).ok_or_else(|| {
                Invalid::new(
                    format!("/samples/{}/{row}", columns[i]),
                    format!("CSV line {}: {field:?} is not a number", row + 2),
                )
            })?;
            samples[i].push(value);
        }
    }
    collect(
        columns
            .into_iter()
            .map(str::to_string)
            .zip(samples.into_iter().map(ScalarBuffer::from)),
    )
}

/// Reads an Arrow IPC stream chunk body as `f64` samples; see the module doc
/// for when the samples are copied.
pub fn arrow(body: Bytes) -> Result<LeadColumns, Invalid> {
    arrow_columns(body).map(Columns::into_values)
}

/// Reads an Arrow IPC stream chunk body, keeping integer columns as
/// integers: when every column is Int8/16/32 or UInt8/16, the samples come
/// back as [`Columns::Counts`] (one batch of Int32 columns: slices of the
/// body, not copied), which a digital ECG takes as its ADC counts as they
/// are. Otherwise as [`arrow`].
pub fn arrow_columns(body: Bytes) -> Result<Columns, Invalid> {
    // First: arrow-ipc panics on some malformed streams (see
    // `ecg_schemas::ipc`).
    let len = ipc::check_stream(&body)
        .map_err(|e| Invalid::new("", format!("malformed Arrow IPC stream: {e}")))?;
    let stream = ipc::read_stream(Buffer::from(body.slice(..len)))
        .map_err(|e| Invalid::new("", format!("not an Arrow IPC stream: {e}")))?;
    let names: Vec<String> = stream
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // Batch by batch, as the stream is laid out, so that the first problem
    // in the body is the one reported.
    let mut rows = 0u64;
    for batch in &stream.batches {
        for (column, name) in batch.columns().iter().zip(&names) {
            check_column(column, name, rows)?;
        }
        rows += batch.num_rows() as u64;
    }
    if let Some(e) = stream.unreadable {
        return Err(Invalid::new("", format!("unreadable Arrow batch: {e}")));
    }
    let counts = stream.schema.fields().iter().all(|f| {
        matches!(
            f.data_type(),
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16
        )
    });
    let (batches, rows) = (&stream.batches, rows as usize);
    let leads = names.into_iter().enumerate();
    if counts {
        let leads = leads.map(|(i, name)| (name, lead::<Int32Type>(batches, i, rows, extend_i32)));
        return collect(leads).map(Columns::Counts);
    }
    let leads = leads.map(|(i, name)| (name, lead::<Float64Type>(batches, i, rows, extend_f64)));
    collect(leads).map(Columns::Values)
}

/// Column `i` of every batch as one buffer of `T`: the batch's own buffer
/// when there is one batch and the column is of type `T`, else one new
/// buffer that `extend` fills batch by batch. The columns are checked
/// ([`check_column`]).
fn lead<T: ArrowPrimitiveType>(
    batches: &[RecordBatch],
    i: usize,
    rows: usize,
    extend: fn(&mut Vec<T::Native>, &ArrayRef),
) -> ScalarBuffer<T::Native> {
    if let [batch] = batches
        && let Some(column) = batch.column(i).as_primitive_opt::<T>()
    {
        return column.values().clone();
    }
    let mut out = Vec::with_capacity(rows);
    for batch in batches {
        extend(&mut out, batch.column(i));
    }
    ScalarBuffer::from(out)
}

/// Appends a column of an integer type that fits in `i32` as `i32`.
fn extend_i32(out: &mut Vec<i32>, column: &ArrayRef) {
    match column.data_type() {
        DataType::Int32 => extend_as::<Int32Type, _>(out, column),
        DataType::Int16 => extend_as::<Int16Type, _>(out, column),
        DataType::Int8 => extend_as::<Int8Type, _>(out, column),
        DataType::UInt16 => extend_as::<UInt16Type, _>(out, column),
        DataType::UInt8 => extend_as::<UInt8Type, _>(out, column),
        other => unreachable!("column type {other} is not a count type"),
    }
}

/// Appends a column's values as `f64`; every accepted type converts exactly.
/// `base`: index in the whole signal of `out`'s first sample (for errors).
pub(crate) fn append_column(
    out: &mut Vec<f64>,
    column: &ArrayRef,
    lead: &str,
    base: u64,
) -> Result<(), Invalid> {
    check_column(column, lead, base + out.len() as u64)?;
    extend_f64(out, column);
    Ok(())
}

/// Refuses nulls and types that do not convert to `f64` exactly. `first`:
/// index in the whole signal of the column's first sample (for errors).
fn check_column(column: &ArrayRef, lead: &str, first: u64) -> Result<(), Invalid> {
    if column.null_count() > 0 {
        let i = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
        return Err(Invalid::new(
            format!("/samples/{lead}/{}", first + i as u64),
            "null sample; every sample must be a number",
        ));
    }
    match column.data_type() {
        DataType::Float64
        | DataType::Float32
        | DataType::Int32
        | DataType::Int16
        | DataType::Int8
        | DataType::UInt32
        | DataType::UInt16
        | DataType::UInt8 => Ok(()),
        other => Err(Invalid::new(
            format!("/samples/{lead}"),
            format!(
                "column type {other} is not accepted; use Float64, Float32 or an integer type of up to 32 bits"
            ),
        )),
    }
}

/// Appends a column checked by [`check_column`] as `f64`.
fn extend_f64(out: &mut Vec<f64>, column: &ArrayRef) {
    match column.data_type() {
        DataType::Float64 => extend_as::<Float64Type, _>(out, column),
        DataType::Float32 => extend_as::<Float32Type, _>(out, column),
        DataType::Int32 => extend_as::<Int32Type, _>(out, column),
        DataType::Int16 => extend_as::<Int16Type, _>(out, column),
        DataType::Int8 => extend_as::<Int8Type, _>(out, column),
        DataType::UInt32 => extend_as::<UInt32Type, _>(out, column),
        DataType::UInt16 => extend_as::<UInt16Type, _>(out, column),
        DataType::UInt8 => extend_as::<UInt8Type, _>(out, column),
        // `check_column` accepts exactly the types above.
        other => unreachable!("column type {other} passed check_column"),
    }
}

/// Appends a column of type `T`, each value converted exactly (`From`).
fn extend_as<T: ArrowPrimitiveType, U: From<T::Native>>(out: &mut Vec<U>, column: &ArrayRef) {
    out.extend(
        column
            .as_primitive::<T>()
            .values()
            .iter()
            .map(|&v| U::from(v)),
    );
}

/// Builds the lead map, refusing a lead named twice.
fn collect<T>(columns: impl Iterator<Item = (String, T)>) -> Result<BTreeMap<String, T>, Invalid> {
    let mut map = BTreeMap::new();
    for (name, values) in columns {
        if map.insert(name.clone(), values).is_some() {
            return Err(Invalid::new(
                format!("/samples/{name}"),
                format!("lead {name:?} appears twice"),
            ));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, RecordBatch, UInt8Array,
        UInt16Array, UInt32Array,
    };
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{Field, Schema};

    use super::*;

    fn leads() -> Vec<String> {
        vec!["I".into(), "II".into()]
    }

    #[test]
    fn csv_with_time_column_reads_every_lead() {
        let body = b"time,II,I\n0.000,1,-0.0\n0.002,2.5,3\n";
        let s = csv(body, &leads(), 500.0).unwrap();
        assert_eq!(s["I"], vec![-0.0, 3.0]);
        assert!(s["I"][0].is_sign_negative());
        assert_eq!(s["II"], vec![1.0, 2.5]);
        assert!(!s.contains_key("time"));
    }

    #[test]
    fn csv_bad_number_points_at_lead_and_row() {
        let err = csv(b"I,II\n1,2\n3,x\n", &leads(), 500.0).unwrap_err();
        assert_eq!(err.field, "/samples/II/1");
        let err = csv(b"I,II\n1\n", &leads(), 500.0).unwrap_err();
        assert!(err.message.contains("1 fields"), "{}", err.message);
    }

    #[test]
    fn a_column_that_is_no_lead_is_refused_by_name_unless_named_as_time() {
        let leads: Vec<String> = vec!["II".into(), "V1".into()];
        // A stray lead first or last: named, never dropped.
        for body in [
            &b"I,II,V1\n1,2,3\n"[..],
            b"II,V1,I\n1,2,3\n",
            b"II,I,V1\n1,2,3\n",
        ] {
            let err = csv(body, &leads, 250.0).unwrap_err();
            assert_eq!(err.field, "/samples/I", "{err:?}");
            assert!(err.message.contains("\"I\" is not a lead"), "{err:?}");
        }
        // A time name is skipped only first.
        let err = csv(b"II,time,V1\n1,0,3\n", &leads, 250.0).unwrap_err();
        assert_eq!(err.field, "/samples/time");
        for (name, step) in [
            ("t", "0.004"),
            ("TIME", "0.004"),
            ("t_ms", "4"),
            ("time_ms", "4"),
        ] {
            let body = format!("{name},II,V1\n0,1,2\n{step},3,4\n");
            let s = csv(body.as_bytes(), &leads, 250.0).unwrap();
            assert_eq!(s["II"], vec![1.0, 3.0], "{name}");
        }
    }

    #[test]
    fn time_must_step_by_one_sample_period() {
        let leads: Vec<String> = vec!["I".into()];
        // Backwards, and 0.5 s steps at 250 Hz.
        for (body, index) in [
            ("t,I\n5,1\n0,2\n", 1),
            ("t,I\n0,1\n0.5,2\n", 1),
            ("t_ms,I\n0,1\n4,2\n8,3\n8,4\n", 3),
            ("t,I\n0,1\nx,2\n", 1),
        ] {
            let err = csv(body.as_bytes(), &leads, 250.0).unwrap_err();
            let name = body.split(',').next().unwrap();
            assert_eq!(
                err.field,
                format!("/samples/{name}/{index}"),
                "{body}: {err:?}"
            );
            assert!(
                err.message.contains(&format!("line {}", index + 2)),
                "{err:?}"
            );
        }
        // Any start; times rounded when printed (360 Hz to the millisecond).
        let mut body = String::from("t,I\n");
        for i in 0..1_000 {
            body.push_str(&format!("{:.3},1\n", 12.5 + f64::from(i) / 360.0));
        }
        assert_eq!(
            csv(body.as_bytes(), &leads, 360.0).unwrap()["I"].len(),
            1_000
        );
    }

    #[test]
    fn arrow_stream_of_several_batches_is_concatenated() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("I", DataType::Float32, false),
            Field::new("II", DataType::Int16, false),
        ]));
        let batch = |a: Vec<f32>, b: Vec<i16>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Float32Array::from(a)),
                    Arc::new(Int16Array::from(b)),
                ],
            )
            .unwrap()
        };
        let mut body = Vec::new();
        let mut w = StreamWriter::try_new(&mut body, &schema).unwrap();
        w.write(&batch(vec![0.5, -0.0], vec![1, -2])).unwrap();
        w.write(&batch(vec![1.0], vec![i16::MIN])).unwrap();
        w.finish().unwrap();
        drop(w);
        let s = arrow(Bytes::from(body)).unwrap();
        assert_eq!(s["I"], vec![0.5, -0.0, 1.0]);
        assert_eq!(s["II"], vec![1.0, -2.0, -32768.0]);
    }

    fn stream(columns: Vec<(&str, ArrayRef)>) -> Bytes {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut body = Vec::new();
        let mut w = StreamWriter::try_new(&mut body, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        Bytes::from(body)
    }

    #[test]
    fn integer_columns_stay_counts_and_int32_ones_are_not_copied() {
        let body = stream(vec![
            (
                "I",
                Arc::new(Int32Array::from(vec![i32::MIN, -1, 7])) as ArrayRef,
            ),
            ("II", Arc::new(Int32Array::from(vec![0, i32::MAX, 2]))),
        ]);
        let Columns::Counts(counts) = arrow_columns(body.clone()).unwrap() else {
            panic!("Int32 columns must stay counts");
        };
        assert_eq!(counts["I"], vec![i32::MIN, -1, 7]);
        assert_eq!(counts["II"], vec![0, i32::MAX, 2]);
        let inside = body.as_ptr_range();
        assert!(inside.contains(&counts["I"].as_ptr().cast()), "copied");

        let body = stream(vec![
            (
                "I",
                Arc::new(Int16Array::from(vec![i16::MIN, 3])) as ArrayRef,
            ),
            ("II", Arc::new(UInt16Array::from(vec![u16::MAX, 0]))),
            ("V1", Arc::new(Int8Array::from(vec![-128, 127]))),
            ("V2", Arc::new(UInt8Array::from(vec![255, 0]))),
        ]);
        let Columns::Counts(counts) = arrow_columns(body.clone()).unwrap() else {
            panic!("narrow integer columns must become counts");
        };
        assert_eq!(counts["I"], vec![-32768, 3]);
        assert_eq!(counts["II"], vec![65535, 0]);
        assert_eq!(counts["V1"], vec![-128, 127]);
        assert_eq!(counts["V2"], vec![255, 0]);
        // The f64 reading of the same body gives the same numbers.
        assert_eq!(arrow(body).unwrap()["II"], vec![65535.0, 0.0]);
    }

    #[test]
    fn a_float_or_uint32_column_makes_the_body_values() {
        for other in [
            Arc::new(Float64Array::from(vec![0.5, 1.0])) as ArrayRef,
            Arc::new(UInt32Array::from(vec![u32::MAX, 1])),
        ] {
            let body = stream(vec![
                ("I", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
                ("II", other.clone()),
            ]);
            let Columns::Values(values) = arrow_columns(body).unwrap() else {
                panic!("{} must make the body values", other.data_type());
            };
            assert_eq!(values["I"], vec![1.0, 2.0]);
            assert_eq!(values["II"].len(), 2);
        }
    }

    #[test]
    fn garbage_is_not_an_arrow_stream() {
        assert!(arrow(Bytes::from_static(b"I,II\n1,2\n")).is_err());
        assert!(arrow(Bytes::new()).is_err());
    }
}
