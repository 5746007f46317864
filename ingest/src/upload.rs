//! `PUT /v1/ecgs/{id}/signal`: a whole recording streamed in one request.
//!
//! The body (CSV or an Arrow IPC stream, of any length) is read frame by
//! frame and cut into chunks of `chunk_samples` per lead as it arrives. Each
//! chunk is validated, encoded and appended to an unnamed temporary file (the
//! spool). Only when the whole body has been read and found valid are the
//! chunks produced, at most `max_in_flight` at a time, and the 202 is sent
//! once the broker has acknowledged every one. Hence:
//!
//! - memory stays flat whatever the recording's size: one block being
//!   parsed, a few body frames in a bounded channel, the in-flight window;
//!   the spool lives on disk (and in the page cache, which is not ours);
//! - a body found bad at its last line changes nothing: 4xx, nothing
//!   produced, the spool deleted with its file handle;
//! - retrying the same PUT (after a 503, or a connection lost before the
//!   answer) produces the same chunks with the same seqs, which the processor
//!   recognises as duplicates: the upload is idempotent. Once an upload has
//!   made the ECG final, the body's [`digest`] (kept in `ecgs`) tells an
//!   identical retry, answered as the first upload was without producing
//!   anything, from another body, a conflict;
//! - the body must keep coming ([`crate::body_rate`]): the time counted is
//!   only that spent waiting for the client, never that of the pacing to
//!   the client's sample quota, during which the gateway does not read.

use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use bytes::{Buf, Bytes};
use ecg_input::stream::SignalBlocks;
use ecg_schemas::validate::to_signal;
use ecg_schemas::{Calibration, Chunk, EcgHeader, Invalid};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::body_format::BodyFormat;
use crate::body_rate::BodyRate;
use crate::error::ApiError;
use crate::producer::ChunkProducer;
use crate::quota::Pacer;

/// Body frames buffered between the connection and the parser.
const FRAME_QUEUE: usize = 16;
/// Spooled chunks read ahead of the producer.
const PAYLOAD_QUEUE: usize = 16;

/// What one upload may be and how it is cut.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Samples per lead in each chunk.
    pub chunk_samples: usize,
    /// Most samples (all leads together) one upload may carry.
    pub max_samples: u64,
    /// Chunks produced and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// Where spool files are created; `None`: the system's temp dir.
    pub spool_dir: Option<PathBuf>,
    /// How fast the body must arrive.
    pub body_rate: BodyRate,
}

/// The formats a whole signal comes in.
pub const FORMATS: [BodyFormat; 2] = [BodyFormat::Csv, BodyFormat::Arrow];

/// What was accepted.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// Chunks produced (seqs `0..chunks`).
    pub chunks: u32,
    /// Samples per lead.
    pub samples_per_lead: u64,
    /// Body bytes read.
    pub bytes: u64,
    /// The body's digest, as [`digest`] gives it.
    pub digest: String,
}

/// Hashes an upload's format and body bytes (XXH3-128; no cryptographic
/// strength is needed: the body comes from the ECG's own client).
struct BodyDigest(xxhash_rust::xxh3::Xxh3);

impl BodyDigest {
    fn new(format: BodyFormat) -> Self {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(format.label().as_bytes());
        hasher.update(b"\0");
        BodyDigest(hasher)
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> String {
        format!("{:032x}", self.0.digest128())
    }
}

/// The digest of a whole body (read to its end, nothing kept, no slower
/// than `rate`): the same for the same format and bytes, however the body
/// is cut into frames.
pub async fn digest(body: Body, format: BodyFormat, rate: BodyRate) -> Result<String, ApiError> {
    let mut digest = BodyDigest::new(format);
    let mut frames = body.into_data_stream();
    let mut clock = rate.clock();
    while let Some(frame) = clock.next(frames.next()).await? {
        let frame = frame.map_err(|e| Invalid::new("", format!("could not read the body: {e}")))?;
        clock.received(frame.len());
        digest.update(&frame);
    }
    Ok(digest.finish())
}

/// Reads, validates and spools `body` (in one of [`FORMATS`]), then
/// produces its chunks.
pub async fn upload(
    body: Body,
    format: BodyFormat,
    header: EcgHeader,
    calibration: Option<Arc<[Calibration]>>,
    settings: &UploadSettings,
    producer: &ChunkProducer,
    pacer: Pacer,
) -> Result<Uploaded, ApiError> {
    let (frames_tx, frames_rx) = mpsc::channel::<io::Result<Bytes>>(FRAME_QUEUE);
    let spooler = {
        let header = header.clone();
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || {
            spool(
                FrameReader::new(frames_rx),
                format,
                &header,
                calibration.as_deref(),
                &settings,
                &pacer,
            )
        })
    };
    let mut digest = BodyDigest::new(format);
    let mut frames = body.into_data_stream();
    // Only the waits for the client's bytes count, not those for the
    // spooler (which paces the upload to the client's quota).
    let mut clock = settings.body_rate.clock();
    let mut too_slow = None;
    loop {
        let frame = match clock.next(frames.next()).await {
            Ok(Some(frame)) => frame.map_err(io::Error::other),
            Ok(None) => break,
            Err(slow) => {
                too_slow = Some(slow);
                Err(io::Error::other("the body arrived too slowly"))
            }
        };
        if let Ok(bytes) = &frame {
            clock.received(bytes.len());
            digest.update(bytes);
        }
        let failed = frame.is_err();
        if frames_tx.send(frame).await.is_err() || failed {
            // The spooler stopped (bad body) or the connection broke: its
            // result says which.
            break;
        }
    }
    drop(frames_tx);
    let spooled = spooler
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling an upload")))?;
    if let Some(slow) = too_slow {
        return Err(slow.into());
    }
    let spooled = spooled?;
    let uploaded = Uploaded {
        chunks: spooled.chunks,
        samples_per_lead: spooled.samples_per_lead,
        bytes: spooled.bytes,
        digest: digest.finish(),
    };
    produce(spooled, &header.ecg_id.to_string(), settings, producer).await?;
    Ok(uploaded)
}

/// A validated upload on disk: length-prefixed encoded chunks.
struct Spooled {
    file: std::fs::File,
    chunks: u32,
    samples_per_lead: u64,
    bytes: u64,
}

fn spool(
    reader: FrameReader,
    format: BodyFormat,
    header: &EcgHeader,
    calibration: Option<&[Calibration]>,
    settings: &UploadSettings,
    pacer: &Pacer,
) -> Result<Spooled, ApiError> {
    let bytes = reader.read.clone();
    let digital = calibration.is_some();
    let rows = settings.chunk_samples.max(1);
    let mut blocks = match format {
        BodyFormat::Csv => {
            SignalBlocks::csv(reader, &header.leads, header.sample_rate_hz, digital, rows)?
        }
        BodyFormat::Arrow => SignalBlocks::arrow(reader, &header.leads, digital, rows),
        // The route takes only `FORMATS`.
        other => unreachable!("a whole signal in {other:?}"),
    };
    let file = match &settings.spool_dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating a spool file")))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let leads = header.leads.len() as u64;
    let mut seq: u32 = 0;
    // A block is written once the next one is read, so the last chunk can be
    // marked final.
    let mut held: Option<Vec<Vec<f64>>> = None;
    loop {
        let next = blocks.next_block()?;
        if blocks.rows() * leads > settings.max_samples {
            return Err(ApiError::TooManySamples {
                limit: settings.max_samples,
            });
        }
        if let Some(block) = &next {
            pacer.pace((block.len() * block[0].len()) as u64);
        }
        if let Some(block) = held.take() {
            let chunk = Chunk {
                header: header.clone(),
                seq,
                is_final: next.is_none(),
                samples: to_signal("/samples", &header.leads, calibration, block)?,
            };
            let payload = chunk.encode().map_err(|e| {
                ApiError::Internal(anyhow::Error::new(e).context("encoding a chunk"))
            })?;
            write_frame(&mut out, &payload).map_err(spool_error)?;
            seq = seq.checked_add(1).ok_or_else(|| {
                Invalid::new("", "more than 2^32 chunks; raise upload.chunk_samples")
            })?;
        }
        match next {
            Some(block) => held = Some(block),
            None => break,
        }
    }
    if seq == 0 {
        return Err(Invalid::new("/samples", "the body holds no samples").into());
    }
    let mut file = out.into_inner().map_err(|e| spool_error(e.into_error()))?;
    file.rewind().map_err(spool_error)?;
    Ok(Spooled {
        file,
        chunks: seq,
        samples_per_lead: blocks.rows(),
        bytes: bytes.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn write_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(payload)
}

fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut payload)?;
    Ok(Some(payload))
}

fn spool_error(e: io::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("writing the upload spool"))
}

/// Produces the spooled chunks with at most `max_in_flight` unacknowledged.
async fn produce(
    spooled: Spooled,
    key: &str,
    settings: &UploadSettings,
    producer: &ChunkProducer,
) -> Result<(), ApiError> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Vec<u8>>>(PAYLOAD_QUEUE);
    let reader = tokio::task::spawn_blocking(move || {
        let mut input = BufReader::with_capacity(1 << 20, spooled.file);
        loop {
            let frame = read_frame(&mut input).transpose();
            let Some(frame) = frame else { return };
            let failed = frame.is_err();
            if tx.blocking_send(frame).is_err() || failed {
                return;
            }
        }
    });
    let payloads = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let result = payloads
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading the upload spool")))
        .map_ok(|payload| async move { producer.send_payload(key, &payload).await })
        .try_buffer_unordered(settings.max_in_flight.max(1))
        .try_for_each(|()| async { Ok(()) })
        .await;
    // On an error the stream is dropped, which closes the channel and ends
    // the reader; wait for it so the spool file is closed.
    let _ = reader.await;
    result
}

/// `Read` over body frames sent from the async side.
struct FrameReader {
    frames: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    /// Bytes received so far.
    read: Arc<AtomicU64>,
}

impl FrameReader {
    fn new(frames: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        FrameReader {
            frames,
            current: Bytes::new(),
            read: Arc::default(),
        }
    }
}

impl Read for FrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.frames.blocking_recv() {
                None => return Ok(0),
                Some(frame) => {
                    self.current = frame?;
                    self.read
                        .fetch_add(self.current.len() as u64, Ordering::Relaxed);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_frames_round_trip() {
        let mut file = tempfile::tempfile().unwrap();
        let payloads = [vec![1u8, 2, 3], vec![], vec![9u8; 70_000]];
        {
            let mut out = BufWriter::new(&mut file);
            for p in &payloads {
                write_frame(&mut out, p).unwrap();
            }
        }
        file.rewind().unwrap();
        let mut input = BufReader::new(file);
        for p in &payloads {
            assert_eq!(read_frame(&mut input).unwrap().as_ref(), Some(p));
        }
        assert_eq!(read_frame(&mut input).unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frame_reader_reads_frames_in_order_then_ends() {
        let (tx, rx) = mpsc::channel(2);
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            FrameReader::new(rx).read_to_string(&mut out).map(|_| out)
        });
        for part in ["a,b\n", "1,", "2\n"] {
            tx.send(Ok(Bytes::from_static(part.as_bytes())))
                .await
                .unwrap();
        }
        drop(tx);
        assert_eq!(reader.await.unwrap().unwrap(), "a,b\n1,2\n");
    }
}
