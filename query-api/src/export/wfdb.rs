//! `GET /v1/ecgs/{id}/wfdb`: the ECG as a PhysioNet WFDB record, in a tar
//! archive streamed as it is written: the signal file (`.dat`, whose length
//! is known from the sample count and the format), then the header
//! (`.hea`, which needs the checksums of the samples written), then one
//! annotation file of detected beats per lead that has any.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ecg_clickhouse::beats;
use ecg_clickhouse::blocks::{self, Stored};
use ecg_formats::wfdb::Format;
use ecg_formats::wfdb::annotations::{self, Annotation, NORMAL};
use ecg_formats::wfdb::write::{self as record, DatWriter, SignalSpec};
use ecg_schemas::api::ErrorBody;
use time::OffsetDateTime;

use super::{Out, Plan, Span, Stop, integers, plans, spawn_writer};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::params::{self, Params};
use crate::store::blocks::scan;

/// The media type of the answer.
pub const TAR: &str = "application/x-tar";
/// Tar's block: headers and padded contents.
const BLOCK: usize = 512;

/// `GET /v1/ecgs/{id}/wfdb`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}/wfdb",
    tag = "ecgs",
    summary = "The ECG as a WFDB record (a tar of .hea, .dat and beat annotations)",
    description = "A tar archive holding a single-segment WFDB record named `record`: `<record>.dat`, the samples of every lead in frames, in format 212 when every count fits 12 bits, else 16, else 32; `<record>.hea`, the header (sampling frequency, samples, base time and date from the range's first sample, and per lead the gain, baseline, units, checksum, initial value and the lead name as description); and for each lead `k` with detected beats, `<record>.qrs<k>`, their annotations in MIT format (type N, channel k). A digital ECG's counts, gains and baselines are written as stored; a physical ECG whose samples are decimals is written as integers with gain 10^scale per unit. Exact or nothing: 409 `no_exact_form` when a lead's calibration changes within the range or its samples have no decimal form (use the FHIR or JSON exports). Streamed: an error after the first byte ends the transfer early.",
    params(
        ("id" = uuid::Uuid, Path, description = "The ECG id"),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, inclusive (default: the first sample)"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive (default: the last sample stored)"),
        ("record" = Option<String>, Query, description = "The record's name: letters, digits and underscores (default `ecg_` and the id's 32 hex digits)"),
    ),
    responses(
        (status = 200, description = "The record", content_type = "application/x-tar", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<record>.tar\""))),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
        (status = 409, description = "The samples have no exact WFDB form (`no_exact_form`; the message says which lead and chunk)", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_wfdb(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (tenant, id) = (caller.tenant, ecg.ecg_id);
    let q = Params::parse(query.as_deref(), &["from", "to", "record"])?;
    let name = match q.one("record")? {
        Some(n) => {
            record::check_record_name(n).map_err(|e| ApiError::param("record", e.to_string()))?;
            n.to_owned()
        }
        None => format!("ecg_{}", id.simple()),
    };
    let ch = &state.clickhouse;
    let placed = super::fhir::placed_samples(ch, &tenant, id).await?;
    let span = Span::of(&q, &ecg, placed)?;
    let forms = blocks::lead_forms(ch, &tenant, id, (span.first, span.last)).await?;
    let plans = plans(&ecg.leads, &forms);
    let mut specs = Vec::with_capacity(plans.len());
    let (mut low, mut high) = (0i64, 0i64);
    for plan in &plans {
        let (gain, baseline, lo, hi) = match plan {
            Plan::Adc {
                gain,
                baseline,
                low,
                high,
            } => (*gain, *baseline, i64::from(*low), i64::from(*high)),
            Plan::Scaled { scale, low, high } => (10f64.powi(i32::from(*scale)), 0, *low, *high),
            Plan::Values { why } => {
                return Err(ApiError::NoExactForm(format!(
                    "{why}: WFDB stores integers; export this ECG as FHIR (/fhir) or as samples"
                )));
            }
        };
        specs.push((gain, baseline));
        low = low.min(lo);
        high = high.max(hi);
    }
    let (Ok(low), Ok(high)) = (i32::try_from(low), i32::try_from(high)) else {
        return Err(ApiError::NoExactForm(format!(
            "samples as integers reach {low}..{high}, beyond WFDB's 32 bits"
        )));
    };
    let format = record::format_for(low, high);
    let start = params::time_of(span.first, ecg.started_at, ecg.sample_rate_hz);
    // Everything the header can refuse is refused now, before a byte is
    // sent (lead names it cannot hold, a gain of 0).
    let signals: Vec<SignalSpec<'_>> = ecg
        .leads
        .iter()
        .zip(&specs)
        .map(|(lead, &(gain, baseline))| SignalSpec {
            description: lead,
            gain,
            baseline,
            units: ecg.units.as_str(),
        })
        .collect();
    record::check_header(
        &name,
        &format!("{name}.dat"),
        ecg.sample_rate_hz,
        Some(start),
        &signals,
    )
    .map_err(|e| ApiError::NoExactForm(format!("no WFDB header holds this ECG: {e}")))?;
    drop(signals);
    let (mut out, body) = Out::new();
    let dat_name = format!("{name}.dat");
    let dat_len = record::dat_len(format, span.len() * ecg.leads.len() as u64);
    tar_header(&mut out.buf, &dat_name, dat_len);
    let job = Record {
        client: ch.clone(),
        tenant,
        id,
        name: name.clone(),
        leads: ecg.leads,
        units: ecg.units.as_str(),
        rate: ecg.sample_rate_hz,
        start,
        span,
        plans,
        specs,
        format,
        dat_len,
    };
    spawn_writer(out, |out| job.write(out));
    Ok((
        [
            (header::CONTENT_TYPE, TAR.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.tar\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A tar (ustar) header for a regular file of `size` bytes.
fn tar_header(out: &mut Vec<u8>, path: &str, size: u64) {
    let mut h = tar::Header::new_ustar();
    // Names are checked by `check_record_name`: short ASCII, always valid.
    let _ = h.set_path(path);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
}

/// Zeros up to the next tar block after a file of `size` bytes.
fn tar_pad(out: &mut Vec<u8>, size: u64) {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// A whole file in the archive.
fn tar_file(out: &mut Vec<u8>, path: &str, bytes: &[u8]) {
    tar_header(out, path, bytes.len() as u64);
    out.extend_from_slice(bytes);
    tar_pad(out, bytes.len() as u64);
}

/// Everything the record needs, moved into the writing task.
struct Record {
    client: clickhouse::Client,
    tenant: String,
    id: uuid::Uuid,
    name: String,
    leads: Vec<String>,
    units: &'static str,
    rate: f64,
    start: OffsetDateTime,
    span: Span,
    plans: Vec<Plan>,
    /// Each lead's (gain, baseline).
    specs: Vec<(f64, i32)>,
    format: Format,
    dat_len: u64,
}

impl Record {
    async fn write(self, out: Out) -> Result<(), Stop> {
        let cursor = blocks::overlapping_by_seq(
            &self.client,
            &self.tenant,
            self.id,
            (self.span.first, self.span.last),
        )?;
        let frames = Frames {
            out,
            writer: DatWriter::new(self.format, self.leads.len()),
            leads: self.leads.clone(),
            plans: self.plans.clone(),
            span: self.span,
            seq: None,
            pending: vec![None; self.leads.len()],
            frames: 0,
            error: None,
        };
        let mut frames = scan(cursor, frames, |f, b| f.block(&b)).await?;
        frames.emit();
        if let Some(e) = frames.error.take() {
            return Err(e);
        }
        if frames.frames != self.span.len() {
            return Err(Stop::Failed(anyhow::anyhow!(
                "the blocks hold {} samples per lead of the {} placed",
                frames.frames,
                self.span.len()
            )));
        }
        let Frames {
            mut out, writer, ..
        } = frames;
        let written = writer.finish(&mut out.buf);
        tar_pad(&mut out.buf, self.dat_len);
        let signals: Vec<SignalSpec<'_>> = self
            .leads
            .iter()
            .zip(&self.specs)
            .map(|(lead, &(gain, baseline))| SignalSpec {
                description: lead,
                gain,
                baseline,
                units: self.units,
            })
            .collect();
        let hea = record::header_text(
            &self.name,
            &format!("{}.dat", self.name),
            self.format,
            self.rate,
            Some(self.start),
            &signals,
            &written,
        )
        .map_err(|e| Stop::Failed(anyhow::Error::new(e).context("writing the header")))?;
        tar_file(&mut out.buf, &format!("{}.hea", self.name), hea.as_bytes());
        out.flush().await?;
        let beats = beats::indices(&self.client, &self.tenant, self.id).await?;
        for (k, lead) in self.leads.iter().enumerate() {
            let Some(b) = beats.iter().find(|b| b.lead == *lead) else {
                continue;
            };
            let notes: Vec<Annotation> = b
                .beats
                .iter()
                .filter(|&&s| s >= self.span.first && s < self.span.last)
                .map(|&s| Annotation {
                    chan: k.min(255) as u8,
                    ..Annotation::beat(s - self.span.first, NORMAL)
                })
                .collect();
            if notes.is_empty() {
                continue;
            }
            let mut bytes = Vec::with_capacity(notes.len() * 2 + 16);
            annotations::write_annotations(&mut bytes, &notes).map_err(|e| {
                Stop::Failed(anyhow::Error::new(e).context("writing the annotations"))
            })?;
            tar_file(&mut out.buf, &format!("{}.qrs{k}", self.name), &bytes);
            out.flush().await?;
        }
        // The end of the archive: two empty blocks.
        out.buf.resize(out.buf.len() + 2 * BLOCK, 0);
        out.flush().await?;
        Ok(())
    }
}

/// The fold that turns blocks (by seq, then lead) into frames.
struct Frames {
    out: Out,
    writer: DatWriter,
    leads: Vec<String>,
    plans: Vec<Plan>,
    span: Span,
    /// The seq being gathered, and its leads' integers (with the block's
    /// first sample).
    seq: Option<u32>,
    pending: Vec<Option<(u64, Vec<i64>)>>,
    frames: u64,
    error: Option<Stop>,
}

impl Frames {
    fn block(&mut self, b: &Stored) {
        if self.error.is_some() {
            return;
        }
        if self.seq != Some(b.seq) {
            self.emit();
            if self.out.flush_if_full_blocking().is_err() {
                self.error = Some(Stop::Gone);
                return;
            }
            self.seq = Some(b.seq);
        }
        let Some(k) = self.leads.iter().position(|l| *l == b.lead) else {
            return; // a lead the ECG does not declare: not in its record
        };
        if self.pending[k].is_none() {
            self.pending[k] = integers(&self.plans[k], b).map(|v| (b.first_sample, v));
        }
    }

    /// Writes the gathered seq's frames into the buffer (the caller sends
    /// it: from the blocking pool or from async code).
    fn emit(&mut self) {
        if self.error.is_some() || self.pending.iter().all(Option::is_none) {
            return;
        }
        let pending = std::mem::replace(&mut self.pending, vec![None; self.leads.len()]);
        let mut columns = Vec::with_capacity(pending.len());
        for (k, p) in pending.into_iter().enumerate() {
            let Some(p) = p else {
                self.error = Some(Stop::Failed(anyhow::anyhow!(
                    "chunk {:?} has no block of lead {:?}",
                    self.seq,
                    self.leads[k]
                )));
                return;
            };
            columns.push(p);
        }
        let (first_sample, len) = (columns[0].0, columns[0].1.len());
        if columns
            .iter()
            .any(|(f, v)| *f != first_sample || v.len() != len)
        {
            self.error = Some(Stop::Failed(anyhow::anyhow!(
                "chunk {:?} has leads of different lengths",
                self.seq
            )));
            return;
        }
        let lo = self
            .span
            .first
            .clamp(first_sample, first_sample + len as u64);
        let hi = self
            .span
            .last
            .clamp(first_sample, first_sample + len as u64);
        let mut frame = vec![0i32; columns.len()];
        for i in (lo - first_sample) as usize..(hi - first_sample) as usize {
            for (slot, (_, v)) in frame.iter_mut().zip(&columns) {
                // The plan checked every value fits 32 bits.
                *slot = v[i] as i32;
            }
            if let Err(e) = self.writer.push_frame(&frame, &mut self.out.buf) {
                self.error = Some(Stop::Failed(anyhow::Error::new(e)));
                return;
            }
        }
        self.frames += hi - lo;
    }
}
