//! Whole-signal bodies read as a stream: a CSV file or an Arrow IPC stream of
//! any length, cut into blocks of at most `block_rows` samples per lead while
//! it is read, so memory stays flat whatever the recording's length.
//!
//! Every sample is checked as it is read (finite; an integer ADC count for a
//! digital ECG), and an error names the lead and the sample's index in the
//! whole signal (`/samples/II/43199999`), not in its block. Blocks come out
//! in the ECG's declared lead order, ready for `Limits::check_signal`.

use std::io::{self, Read};

use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::root_as_message;

use ecg_schemas::validate::{adc_count_message, escape, is_adc_count};
use ecg_schemas::{Invalid, ipc};

use crate::tabular::{TimeColumn, append_column, unknown_column};

/// Largest Arrow IPC message (metadata + body) accepted in a stream; a
/// writer with sane batch sizes stays far below it, and it bounds what one
/// message can make the reader hold.
pub const MAX_ARROW_MESSAGE_BYTES: usize = 64 << 20;

/// A whole-signal body, read block by block.
pub struct SignalBlocks<R> {
    source: Source<R>,
    leads: Vec<String>,
    digital: bool,
    block_rows: usize,
    /// Samples per lead returned so far.
    rows: u64,
}

enum Source<R> {
    Csv(CsvSource<R>),
    Arrow(ArrowSource<R>),
}

impl<R> std::fmt::Debug for SignalBlocks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalBlocks")
            .field("leads", &self.leads)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<R: Read> SignalBlocks<R> {
    /// A CSV body: a header of lead names (every declared lead, any order,
    /// optionally after a time column, checked against `sample_rate_hz` as
    /// in [`crate::tabular::csv`]), then one line per sample instant. Reads
    /// the header now.
    pub fn csv(
        reader: R,
        leads: &[String],
        sample_rate_hz: f64,
        digital: bool,
        block_rows: usize,
    ) -> Result<Self, Invalid> {
        let source = CsvSource::new(reader, leads, sample_rate_hz)?;
        Ok(Self::new(Source::Csv(source), leads, digital, block_rows))
    }

    /// An Arrow IPC stream body: one column per declared lead, named by the
    /// lead, of a numeric type that converts to `f64` exactly; any number of
    /// record batches of any sizes.
    pub fn arrow(reader: R, leads: &[String], digital: bool, block_rows: usize) -> Self {
        let source = ArrowSource {
            reader,
            decoder: StreamDecoder::new(),
            columns: None,
            pending: vec![Vec::new(); leads.len()],
            returned: 0,
            start: 0,
            done: false,
        };
        Self::new(Source::Arrow(source), leads, digital, block_rows)
    }

    fn new(source: Source<R>, leads: &[String], digital: bool, block_rows: usize) -> Self {
        SignalBlocks {
            source,
            leads: leads.to_vec(),
            digital,
            block_rows: block_rows.max(1),
            rows: 0,
        }
    }

    /// Samples per lead read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next block, one vector per declared lead (all of one length, at
    /// most `block_rows`), or `None` at the end of the body.
    pub fn next_block(&mut self) -> Result<Option<Vec<Vec<f64>>>, Invalid> {
        let block = match &mut self.source {
            Source::Csv(csv) => csv.block(self.block_rows, self.rows)?,
            Source::Arrow(arrow) => arrow.block(&self.leads, self.block_rows)?,
        };
        let Some(block) = block else {
            return Ok(None);
        };
        for (lead, values) in self.leads.iter().zip(&block) {
            check_values(lead, self.rows, values, self.digital)?;
        }
        self.rows += block[0].len() as u64;
        Ok(Some(block))
    }
}

/// Finite, and an integer ADC count where `digital`; errors carry the
/// sample's index in the whole signal (`first` is the block's first).
fn check_values(lead: &str, first: u64, values: &[f64], digital: bool) -> Result<(), Invalid> {
    let bad = |v: f64| !v.is_finite() || (digital && !is_adc_count(v));
    let Some(i) = values.iter().position(|&v| bad(v)) else {
        return Ok(());
    };
    let index = first + i as u64;
    let v = values[i];
    let message = if v.is_finite() {
        adc_count_message(index, v)
    } else {
        format!("sample {index} is {v}; samples must be finite numbers")
    };
    Err(Invalid::new(
        format!("/samples/{}/{index}", escape(lead)),
        message,
    ))
}

fn read_error(e: &io::Error) -> Invalid {
    Invalid::new("", format!("could not read the body: {e}"))
}

struct CsvSource<R> {
    reader: csv::Reader<R>,
    /// For each CSV column: the declared lead it holds, or `None` for the
    /// time column.
    targets: Vec<Option<usize>>,
    time: Option<TimeColumn>,
    leads: Vec<String>,
    record: csv::ByteRecord,
    /// Line number of the next record (the header is line 1).
    line: u64,
}

impl<R: Read> CsvSource<R> {
    fn new(reader: R, leads: &[String], sample_rate_hz: f64) -> Result<Self, Invalid> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .buffer_capacity(256 << 10)
            .from_reader(reader);
        let names: Vec<String> = reader
            .headers()
            .map_err(|e| Invalid::new("", format!("unreadable CSV header: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut targets = Vec::with_capacity(names.len());
        let mut seen = vec![false; leads.len()];
        let mut time = None;
        for (i, name) in names.iter().enumerate() {
            let Some(lead) = leads.iter().position(|l| l == name) else {
                match TimeColumn::new(name, sample_rate_hz) {
                    Some(column) if i == 0 && names.len() > 1 => {
                        time = Some(column);
                        targets.push(None);
                        continue;
                    }
                    _ => return Err(unknown_column(name, leads)),
                }
            };
            if std::mem::replace(&mut seen[lead], true) {
                return Err(Invalid::new(
                    format!("/samples/{}", escape(name)),
                    format!("lead {name:?} appears twice in the CSV header"),
                ));
            }
            targets.push(Some(lead));
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(Invalid::new(
                "/samples",
                format!(
                    "lead {:?} is missing from the CSV header; every declared lead needs a column",
                    leads[missing]
                ),
            ));
        }
        Ok(CsvSource {
            reader,
            targets,
            time,
            leads: leads.to_vec(),
            record: csv::ByteRecord::new(),
            line: 2,
        })
    }

    fn block(&mut self, rows: usize, first: u64) -> Result<Option<Vec<Vec<f64>>>, Invalid> {
        let leads = self.targets.iter().flatten().count();
        let mut block: Vec<Vec<f64>> = (0..leads).map(|_| Vec::with_capacity(rows)).collect();
        let mut n = 0;
        while n < rows {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| Invalid::new("", format!("unreadable CSV line {}: {e}", self.line)))?;
            if !more {
                break;
            }
            if self.record.len() != self.targets.len() {
                return Err(Invalid::new(
                    "",
                    format!(
                        "CSV line {} has {} fields, the header has {}",
                        self.line,
                        self.record.len(),
                        self.targets.len()
                    ),
                ));
            }
            for (field, target) in self.record.iter().zip(&self.targets) {
                let Some(lead) = target else {
                    // Only the time column has no lead.
                    if let Some(time) = &mut self.time {
                        time.check(field, first + n as u64, self.line)?;
                    }
                    continue;
                };
                let Some(v) = crate::number::parse_f64(field) else {
                    return Err(Invalid::new(
                        format!(
                            "/samples/{}/{}",
                            escape(&self.leads[*lead]),
                            first + n as u64
                        ),
                        format!(
                            "CSV line {}: {:?} is not a number",
                            self.line,
                            String::from_utf8_lossy(field)
                        ),
                    ));
                };
                block[*lead].push(v);
            }
            self.line += 1;
            n += 1;
        }
        Ok((n > 0).then_some(block))
    }
}

struct ArrowSource<R> {
    reader: R,
    decoder: StreamDecoder,
    /// For each declared lead, its column in the stream's schema.
    columns: Option<Vec<usize>>,
    /// Samples read from batches but not yet returned in a block.
    pending: Vec<Vec<f64>>,
    /// Samples per lead returned in blocks so far.
    returned: u64,
    /// Index in `pending` of the first sample not yet returned.
    start: usize,
    done: bool,
}

impl<R: Read> ArrowSource<R> {
    fn block(&mut self, leads: &[String], rows: usize) -> Result<Option<Vec<Vec<f64>>>, Invalid> {
        while !self.done && self.pending[0].len() - self.start < rows {
            // What is left is less than a block: drop the returned front
            // before appending, so `pending` never holds much more than one
            // batch plus one block.
            if self.start > 0 {
                for values in &mut self.pending {
                    values.drain(..self.start);
                }
                self.start = 0;
            }
            match self.next_message()? {
                None => self.done = true,
                Some(message) => self.decode(message, leads)?,
            }
        }
        let available = self.pending[0].len() - self.start;
        if available == 0 {
            return Ok(None);
        }
        let take = rows.min(available);
        let block = self
            .pending
            .iter()
            .map(|values| values[self.start..self.start + take].to_vec())
            .collect();
        self.start += take;
        self.returned += take as u64;
        Ok(Some(block))
    }

    /// One framed message (continuation, length, metadata, body), checked
    /// by `ipc::check_stream` before arrow sees it; `None` at the end.
    fn next_message(&mut self) -> Result<Option<Vec<u8>>, Invalid> {
        let malformed = |m: String| Invalid::new("", format!("malformed Arrow IPC stream: {m}"));
        let mut prefix = [0u8; 4];
        if !read_exact_or_eof(&mut self.reader, &mut prefix)? {
            return Ok(None);
        }
        let mut message = Vec::new();
        if prefix == [0xFF; 4] {
            message.extend_from_slice(&prefix);
            if !read_exact_or_eof(&mut self.reader, &mut prefix)? {
                return Err(malformed(
                    "the stream ends after a continuation marker".into(),
                ));
            }
        }
        message.extend_from_slice(&prefix);
        let meta_len = i32::from_le_bytes(prefix);
        if meta_len == 0 {
            return Ok(None);
        }
        let meta_len = usize::try_from(meta_len)
            .ok()
            .filter(|&n| n <= MAX_ARROW_MESSAGE_BYTES)
            .ok_or_else(|| malformed(format!("metadata length {meta_len} is out of range")))?;
        let start = message.len();
        message.resize(start + meta_len, 0);
        self.reader
            .read_exact(&mut message[start..])
            .map_err(|e| read_error(&e))?;
        let body_len = root_as_message(&message[start..])
            .map_err(|e| malformed(format!("invalid message metadata: {e}")))?
            .bodyLength();
        let body_len = usize::try_from(body_len)
            .ok()
            .filter(|&n| {
                n.checked_add(meta_len)
                    .is_some_and(|total| total <= MAX_ARROW_MESSAGE_BYTES)
            })
            .ok_or_else(|| {
                Invalid::new(
                    "",
                    format!(
                        "an Arrow IPC message of {body_len} body bytes exceeds the limit of {MAX_ARROW_MESSAGE_BYTES} bytes per message; write smaller record batches"
                    ),
                )
                .limit(MAX_ARROW_MESSAGE_BYTES as u64)
            })?;
        let start = message.len();
        message.resize(start + body_len, 0);
        self.reader
            .read_exact(&mut message[start..])
            .map_err(|e| read_error(&e))?;
        ipc::check_stream(&message).map_err(malformed)?;
        Ok(Some(message))
    }

    fn decode(&mut self, message: Vec<u8>, leads: &[String]) -> Result<(), Invalid> {
        let mut buffer = Buffer::from_vec(message);
        let batch = self
            .decoder
            .decode(&mut buffer)
            .map_err(|e| Invalid::new("", format!("unreadable Arrow IPC message: {e}")))?;
        if self.columns.is_none()
            && let Some(schema) = self.decoder.schema()
        {
            self.columns = Some(columns_of(&schema, leads)?);
        }
        let (Some(batch), Some(columns)) = (batch, &self.columns) else {
            return Ok(());
        };
        for (i, (lead, &column)) in leads.iter().zip(columns).enumerate() {
            append_column(
                &mut self.pending[i],
                batch.column(column),
                lead,
                self.returned - self.start as u64,
            )?;
        }
        Ok(())
    }
}

/// Maps each declared lead to its column of the stream's schema.
fn columns_of(schema: &arrow_schema::Schema, leads: &[String]) -> Result<Vec<usize>, Invalid> {
    if let Some(unknown) = schema
        .fields()
        .iter()
        .find(|f| !leads.iter().any(|l| l == f.name()))
    {
        let name = unknown.name();
        return Err(Invalid::new(
            format!("/samples/{}", escape(name)),
            format!("unknown lead {name:?}; this ECG declares {leads:?}"),
        ));
    }
    leads
        .iter()
        .map(|lead| {
            let found: Vec<usize> = schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name() == lead)
                .map(|(i, _)| i)
                .collect();
            match found[..] {
                [i] => Ok(i),
                [] => Err(Invalid::new(
                    "/samples",
                    format!("lead {lead:?} is missing; every declared lead needs a column"),
                )),
                _ => Err(Invalid::new(
                    format!("/samples/{}", escape(lead)),
                    format!("lead {lead:?} appears twice"),
                )),
            }
        })
        .collect()
}

/// Fills `buf`; `false` if the reader was already at its end.
fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> Result<bool, Invalid> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(Invalid::new(
                    "",
                    "malformed Arrow IPC stream: it ends inside a message length",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(&e)),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int16Array, RecordBatch};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn leads() -> Vec<String> {
        vec!["I".into(), "II".into()]
    }

    fn all_blocks<R: Read>(mut blocks: SignalBlocks<R>) -> Result<Vec<Vec<Vec<f64>>>, Invalid> {
        let mut out = Vec::new();
        while let Some(block) = blocks.next_block()? {
            out.push(block);
        }
        Ok(out)
    }

    #[test]
    fn csv_is_cut_into_blocks_in_declared_lead_order() {
        let body = b"time,II,I\n0,1,-1\n0.002,2,-2\n0.004,3,-3\n0.006,4,-4\n0.008,5,-5\n";
        let blocks = SignalBlocks::csv(&body[..], &leads(), 500.0, false, 2).unwrap();
        let got = all_blocks(blocks).unwrap();
        assert_eq!(
            got,
            vec![
                vec![vec![-1.0, -2.0], vec![1.0, 2.0]],
                vec![vec![-3.0, -4.0], vec![3.0, 4.0]],
                vec![vec![-5.0], vec![5.0]],
            ]
        );
    }

    #[test]
    fn csv_errors_name_the_sample_in_the_whole_signal() {
        let body = b"I,II\n1,2\n3,4\n5,x\n";
        let err = all_blocks(SignalBlocks::csv(&body[..], &leads(), 500.0, false, 2).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "/samples/II/2");
        assert!(err.message.contains("line 4"), "{}", err.message);

        let body = b"I,II\n1,2\n3,4\n5,NaN\n";
        let err = all_blocks(SignalBlocks::csv(&body[..], &leads(), 500.0, false, 2).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "/samples/II/2");

        let body = b"I,II\n1,2\n3,4.5\n";
        let err = all_blocks(SignalBlocks::csv(&body[..], &leads(), 500.0, true, 1).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "/samples/II/1");
        assert!(err.message.contains("ADC counts"), "{}", err.message);
    }

    #[test]
    fn a_stray_column_is_refused_and_time_is_checked_across_blocks() {
        let err =
            SignalBlocks::csv(&b"V1,I,II\n1,2,3\n"[..], &leads(), 500.0, false, 2).unwrap_err();
        assert_eq!(err.field, "/samples/V1");
        assert!(err.message.contains("not a lead"), "{}", err.message);
        // Line 5 (sample 3, in the second block of two) goes back in time.
        let body = b"t_ms,I,II\n0,1,1\n2,1,1\n4,1,1\n2,1,1\n";
        let err = all_blocks(SignalBlocks::csv(&body[..], &leads(), 500.0, false, 2).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "/samples/t_ms/3");
        assert!(err.message.contains("line 5"), "{}", err.message);
        // 0.5 s steps at 250 Hz.
        let body = b"time,I,II\n0,1,1\n0.5,1,1\n";
        let err = all_blocks(SignalBlocks::csv(&body[..], &leads(), 250.0, false, 2).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "/samples/time/1");
    }

    #[test]
    fn csv_header_must_name_exactly_the_declared_leads() {
        let err = SignalBlocks::csv(&b"I,V1\n1,2\n"[..], &leads(), 500.0, false, 2).unwrap_err();
        assert_eq!(err.field, "/samples/V1");
        let err = SignalBlocks::csv(&b"time,I\n0,1\n"[..], &leads(), 500.0, false, 2).unwrap_err();
        assert!(err.message.contains("\"II\" is missing"), "{}", err.message);
        let err =
            SignalBlocks::csv(&b"I,II,I\n1,2,3\n"[..], &leads(), 500.0, false, 2).unwrap_err();
        assert!(err.message.contains("twice"), "{}", err.message);
    }

    fn arrow_body(batches: &[(Vec<f64>, Vec<i16>)]) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("II", DataType::Int16, false),
            Field::new("I", DataType::Float64, false),
        ]));
        let mut body = Vec::new();
        let mut w = StreamWriter::try_new(&mut body, &schema).unwrap();
        for (i, ii) in batches {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int16Array::from(ii.clone())),
                    Arc::new(Float64Array::from(i.clone())),
                ],
            )
            .unwrap();
            w.write(&batch).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        body
    }

    #[test]
    fn arrow_batches_of_any_size_are_recut_into_blocks() {
        let body = arrow_body(&[
            (vec![0.5], vec![1]),
            (vec![1.5, 2.5, 3.5, 4.5], vec![2, 3, 4, 5]),
            (vec![5.5, 6.5], vec![6, 7]),
        ]);
        let blocks = SignalBlocks::arrow(&body[..], &leads(), false, 3);
        let got = all_blocks(blocks).unwrap();
        assert_eq!(
            got,
            vec![
                vec![vec![0.5, 1.5, 2.5], vec![1.0, 2.0, 3.0]],
                vec![vec![3.5, 4.5, 5.5], vec![4.0, 5.0, 6.0]],
                vec![vec![6.5], vec![7.0]],
            ]
        );
    }

    #[test]
    fn arrow_errors_name_the_sample_in_the_whole_signal() {
        let body = arrow_body(&[(vec![0.5, 1.0], vec![1, 2]), (vec![f64::INFINITY], vec![3])]);
        let err = all_blocks(SignalBlocks::arrow(&body[..], &leads(), false, 1)).unwrap_err();
        assert_eq!(err.field, "/samples/I/2");
        let err =
            all_blocks(SignalBlocks::arrow(&body[..], &["I".to_string()], false, 1)).unwrap_err();
        assert_eq!(err.field, "/samples/II");
    }

    #[test]
    fn truncated_or_garbled_arrow_is_refused_not_panicking() {
        let body = arrow_body(&[(vec![0.5, 1.0], vec![1, 2])]);
        for cut in [3, 9, body.len() / 2, body.len() - 9] {
            let result = all_blocks(SignalBlocks::arrow(&body[..cut], &leads(), false, 4));
            assert!(result.is_err(), "cut at {cut} was accepted");
        }
        let mut garbled = body.clone();
        garbled[20] ^= 0xFF;
        let _ = all_blocks(SignalBlocks::arrow(&garbled[..], &leads(), false, 4));
    }
}
