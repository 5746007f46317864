//! Reading placed blocks (`blocks`, migration 10) a few at a time: the
//! columns the scans need, and [`scan`], which streams a query's blocks to a
//! fold on the blocking pool.
//!
//! Memory stays bounded whatever the range (a 24-hour 12-lead 500 Hz ECG is
//! half a billion samples): blocks arrive one by one from the cursor and at
//! most [`IN_FLIGHT`] wait for the fold, which keeps only its own result.
//! Decoding and counting run off the async workers, while the next blocks
//! are being read.

use std::borrow::Cow;

use clickhouse::Row;
use clickhouse::query::Query;
use ecg_clickhouse::blocks::{Codec, Form};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// Blocks read but not yet folded, at most: a few MB even for chunks of
/// 100,000 samples.
const IN_FLIGHT: usize = 8;

/// What the scans read of one row of `blocks`: where it is and its values.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Stored {
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub lead: String,
    pub seq: u32,
    pub sample_rate_hz: f64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    pub first_sample: u64,
    pub codec: Codec,
    pub ints: Vec<i32>,
    pub scale: u8,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub raw: Vec<f64>,
    pub raw_at: Vec<u32>,
}

impl Stored {
    /// The block's stored form, borrowing its arrays.
    pub fn form(&self) -> Form<'_> {
        Form {
            codec: self.codec,
            ints: Cow::Borrowed(&self.ints),
            scale: self.scale,
            adc_gain: self.adc_gain,
            adc_baseline: self.adc_baseline,
            raw: Cow::Borrowed(&self.raw),
            raw_at: self.raw_at.clone(),
        }
    }
}

#[cfg(test)]
impl Stored {
    /// A block of ECG nil at 500 Hz from the epoch, as the processor stores it.
    pub(crate) fn of(lead: &str, seq: u32, first_sample: u64, form: &Form<'_>) -> Stored {
        Stored {
            ecg_id: Uuid::nil(),
            lead: lead.into(),
            seq,
            sample_rate_hz: 500.0,
            started_at: OffsetDateTime::UNIX_EPOCH,
            first_sample,
            codec: form.codec,
            ints: form.ints.to_vec(),
            scale: form.scale,
            adc_gain: form.adc_gain,
            adc_baseline: form.adc_baseline,
            raw: form.raw.to_vec(),
            raw_at: form.raw_at.clone(),
        }
    }
}

/// Runs `query` (which selects `?fields` of [`Stored`]) and folds every
/// block it returns, in its order, into `state` on the blocking pool.
pub async fn scan<S, F>(query: Query, mut state: S, mut fold: F) -> clickhouse::error::Result<S>
where
    S: Send + 'static,
    F: FnMut(&mut S, Stored) + Send + 'static,
{
    let mut cursor = query.fetch::<Stored>()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Stored>(IN_FLIGHT);
    let worker = tokio::task::spawn_blocking(move || {
        while let Some(block) = rx.blocking_recv() {
            fold(&mut state, block);
        }
        state
    });
    // On a read error the sender drops, the fold ends on its own, and its
    // partial result is dropped with the task.
    while let Some(block) = cursor.next().await? {
        if tx.send(block).await.is_err() {
            break; // the fold panicked: its join below says so
        }
    }
    drop(tx);
    match worker.await {
        Ok(state) => Ok(state),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(clickhouse::error::Error::Other(Box::new(e))),
    }
}
