//! `status`, `insights` and `watch`: the query API's answers on stdout
//! (the status as JSON; the insights as text or JSON, see [`Format`]);
//! `watch` reports progress on stderr as it changes.

use std::time::Duration;

use anyhow::bail;
use ecg_client::Api;
use ecg_schemas::Status;
use uuid::Uuid;

use crate::cli::Format;
use crate::report;

pub async fn status(api: &Api, id: Uuid) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&api.status(id).await?)?);
    Ok(())
}

pub async fn insights(api: &Api, id: Uuid, format: Format) -> anyhow::Result<()> {
    let insights = api.insights(id).await?;
    if format.is_text() {
        print!("{}", report::insights(&insights));
    } else {
        println!("{}", serde_json::to_string_pretty(&insights)?);
    }
    Ok(())
}

/// Polls the status every `interval` until the ECG is complete (then prints
/// its insights) or failed (then an error with the refused chunks).
pub async fn watch(api: &Api, id: Uuid, interval: Duration, format: Format) -> anyhow::Result<()> {
    let mut last = None;
    loop {
        let s = api.status(id).await?;
        let line = format!(
            "{:?}: {} chunks, {} samples written; next seq {}, final seq {}, {} waiting, {} missing",
            s.status,
            s.chunks_processed,
            s.samples_processed,
            s.next_seq,
            s.final_seq.map_or("unknown".into(), |f| f.to_string()),
            s.waiting_count,
            s.missing_count
        );
        if last.as_ref() != Some(&line) {
            eprintln!("{line}");
            last = Some(line);
        }
        match s.status {
            Status::Complete => return insights(api, id, format).await,
            Status::Failed => {
                let reasons: Vec<String> = s
                    .failed_chunks
                    .iter()
                    .map(|f| format!("seq {:?}: {}", f.seq, f.reason))
                    .collect();
                bail!("ECG {id} failed: {}", reasons.join("; "));
            }
            Status::Receiving | Status::Processing => tokio::time::sleep(interval).await,
        }
    }
}

/// Waits until the ECG is complete (or failed) without printing progress.
pub async fn until_complete(api: &Api, id: Uuid) -> anyhow::Result<()> {
    loop {
        let s = api.status(id).await?;
        match s.status {
            Status::Complete => return Ok(()),
            Status::Failed => bail!("ECG {id} failed: {:?}", s.failed_chunks),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
