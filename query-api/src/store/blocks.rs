//! [`scan`]: streams a cursor of placed blocks (`ecg_clickhouse::blocks`'
//! [`Stored`] rows) to a fold on the blocking pool.
//!
//! Memory stays bounded whatever the range (a 24-hour 12-lead 500 Hz ECG is
//! half a billion samples): blocks arrive one by one from the cursor and at
//! most [`IN_FLIGHT`] wait for the fold, which keeps only its own result.
//! Decoding and counting run off the async workers, while the next blocks
//! are being read.

use clickhouse::query::RowCursor;
use ecg_clickhouse::blocks::Stored;

/// Blocks read but not yet folded, at most: a few MB even for chunks of
/// 100,000 samples.
const IN_FLIGHT: usize = 8;

/// Folds every block `cursor` returns, in its order, into `state` on the
/// blocking pool.
pub async fn scan<S, F>(
    mut cursor: RowCursor<Stored>,
    mut state: S,
    mut fold: F,
) -> clickhouse::error::Result<S>
where
    S: Send + 'static,
    F: FnMut(&mut S, Stored) + Send + 'static,
{
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

/// A block of ECG nil at 500 Hz from the epoch, as the processor stores it.
#[cfg(test)]
pub(crate) fn stored(
    lead: &str,
    seq: u32,
    first_sample: u64,
    form: &ecg_clickhouse::blocks::Form<'_>,
) -> Stored {
    Stored {
        ecg_id: uuid::Uuid::nil(),
        lead: lead.into(),
        seq,
        sample_rate_hz: 500.0,
        started_at: time::OffsetDateTime::UNIX_EPOCH,
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
