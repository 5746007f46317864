//! A structural check of an Arrow IPC stream before arrow-ipc reads it.
//!
//! arrow-ipc 60 trusts each record batch's buffer offsets and lengths and
//! panics (`Buffer::slice_with_length`) when one points outside the message
//! body (found by fuzzing; see `fuzz/README.md`). A Kafka message or an HTTP
//! body can be anything, and a panic in the processor would make one bad
//! message stop its partition. So every stream is walked first: framing,
//! metadata (a verified flatbuffer read, which never panics), body lengths,
//! and every buffer of every record batch inside its body. Only streams that
//! pass reach arrow's decoder.
//!
//! [`read_stream`] then reads a checked stream held in one Arrow [`Buffer`]
//! without copying it: each column of each batch is a slice of that buffer
//! (unless a column is misaligned for its type, when arrow copies it once).

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::{MessageHeader, Type, root_as_message};
use arrow_schema::{ArrowError, SchemaRef};

/// Checks the framing of an IPC stream: `[0xFFFFFFFF] len metadata body`
/// messages until an end marker or the end of the bytes. Returns the length
/// of the stream: bytes after an end marker are not part of it (arrow's
/// `StreamReader` never read them, and they are ignored, as before).
pub fn check_stream(bytes: &[u8]) -> Result<usize, String> {
    let mut pos = 0usize;
    let read_i32 = |at: usize| -> Result<i32, String> {
        let raw = bytes
            .get(at..at + 4)
            .ok_or_else(|| format!("stream ends inside a message length at byte {at}"))?;
        Ok(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    };
    while pos < bytes.len() {
        let mut meta_len = read_i32(pos)?;
        pos += 4;
        if meta_len == -1 {
            // The continuation marker 0xFFFFFFFF precedes the real length.
            meta_len = read_i32(pos)?;
            pos += 4;
        }
        if meta_len == 0 {
            return Ok(pos);
        }
        let meta_len = usize::try_from(meta_len)
            .map_err(|_| format!("negative metadata length {meta_len} at byte {pos}"))?;
        let meta = bytes
            .get(pos..pos.saturating_add(meta_len))
            .ok_or_else(|| {
                format!("metadata of {meta_len} bytes at byte {pos} runs past the end")
            })?;
        pos += meta_len;
        let message =
            root_as_message(meta).map_err(|e| format!("invalid message metadata: {e}"))?;
        let body_len = usize::try_from(message.bodyLength())
            .map_err(|_| format!("negative body length {}", message.bodyLength()))?;
        if pos
            .checked_add(body_len)
            .is_none_or(|end| end > bytes.len())
        {
            return Err(format!(
                "message body of {body_len} bytes at byte {pos} runs past the end"
            ));
        }
        match message.header_type() {
            MessageHeader::Schema => {
                // Our columns are flat numbers. arrow-ipc 60 also panics on
                // some malformed nested columns (a union's type ids, found by
                // fuzzing), so nested, dictionary and other types are refused
                // here, before arrow builds any of them.
                let schema = message
                    .header_as_schema()
                    .ok_or("schema message without its header")?;
                for field in schema.fields().iter().flatten() {
                    let flat_number = matches!(field.type_type(), Type::Int | Type::FloatingPoint)
                        && field.children().is_none_or(|c| c.is_empty())
                        && field.dictionary().is_none();
                    if !flat_number {
                        return Err(format!(
                            "column {:?} is of type {:?}; only flat integer and floating-point columns are accepted",
                            field.name().unwrap_or(""),
                            field.type_type()
                        ));
                    }
                }
            }
            MessageHeader::RecordBatch => {
                let batch = message
                    .header_as_record_batch()
                    .ok_or("record batch message without its header")?;
                if batch.compression().is_some() {
                    return Err("compressed record batches are not accepted".into());
                }
                for b in batch.buffers().iter().flatten() {
                    let inside = b.offset() >= 0
                        && b.length() >= 0
                        && b.offset()
                            .checked_add(b.length())
                            .is_some_and(|end| end <= body_len as i64);
                    if !inside {
                        return Err(format!(
                            "a buffer (offset {}, length {}) lies outside its {body_len}-byte body",
                            b.offset(),
                            b.length()
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "unexpected {other:?} message; chunks hold a schema and record batches"
                ));
            }
        }
        pos += body_len;
    }
    Ok(pos)
}

/// A stream as read by [`read_stream`].
#[derive(Debug)]
pub struct Stream {
    pub schema: SchemaRef,
    /// The record batches before the end or before the first unreadable one.
    pub batches: Vec<RecordBatch>,
    /// Why reading stopped before the end, if it did. Kept apart so that a
    /// caller can report problems in the batches before it first, as a
    /// reader going batch by batch would.
    pub unreadable: Option<ArrowError>,
}

/// Reads a stream that passed [`check_stream`], cut to the length it
/// returned. `Err` when the schema message is missing or unreadable.
pub fn read_stream(mut stream: Buffer) -> Result<Stream, ArrowError> {
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    let unreadable = loop {
        match decoder.decode(&mut stream) {
            Ok(Some(batch)) => batches.push(batch),
            // `decode` only returns `None` once the buffer is consumed.
            Ok(None) => break decoder.finish().err(),
            Err(e) => break Some(e),
        }
    };
    match decoder.schema() {
        Some(schema) => Ok(Stream {
            schema,
            batches,
            unreadable,
        }),
        None => Err(unreadable
            .unwrap_or_else(|| ArrowError::IpcError("the stream holds no schema message".into()))),
    }
}
