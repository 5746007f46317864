//! Bytes per stored sample of table `blocks` (Storage v2, migration 10), on
//! real ECGs sent through the whole write path: gateway, Kafka, the
//! processor's choice of stored form and its insert, MergeTree.
//!
//! For each data set and each way of sending it (the whole signal in one
//! `PUT`, which the gateway cuts into chunks of 2,000 samples per lead, and a
//! wearable's 1-second chunks `POST`ed one by one): a fresh stack and
//! database, every value read back through the `samples` view and compared
//! bit for bit with what was sent, then `OPTIMIZE TABLE blocks FINAL` and the
//! compressed bytes of every column (`system.columns`, which sums the active
//! parts) over the number of samples. The view's rows are also copied into a
//! table with the per-sample layout of migrations 0001-0004 (`value Float64
//! CODEC(ZSTD(1))`, default codecs elsewhere) for comparison. Parts are
//! rewritten as wide parts for the per-column figures (small parts are
//! compact and report only a total, printed too). Also timed: `SELECT
//! sum(value)` over the `samples` view and over the old table, one thread,
//! best of 7 (what unpacking blocks costs an analyst).
//!
//! Run with `bench/storage.sh`. Data: the 12-lead ECG of `data/ecg` (mV) and
//! MIT-BIH record 100 (`ECG_MITDB`, default `data/mitdb/100`; both
//! leads, 30 min at 360 Hz) as the ADC counts of its file and as millivolts.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use serde_json::{Value, json};

/// One ECG to send.
struct DataSet {
    name: String,
    fs: f64,
    leads: Vec<String>,
    /// Per lead, what the client sends: millivolts, or ADC counts.
    signal: Vec<Vec<f64>>,
    /// Per lead, the physical value the table must return.
    expected: Vec<Vec<f64>>,
    /// Digital: each lead's calibration (gain, baseline).
    adc: Option<Vec<(f64, i64)>>,
}

/// How the signal reaches the gateway.
#[derive(Clone, Copy)]
enum Delivery {
    /// `PUT /v1/ecgs/{id}/signal` as CSV: the gateway cuts the chunks.
    Whole,
    /// `POST /v1/ecgs/{id}/chunks`, one second of signal each.
    Seconds,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sets = vec![ecgplot()?];
    let mitdb = std::env::var("ECG_MITDB")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mitdb/100").into());
    match mitdb_sets(&mitdb) {
        Ok(more) => sets.extend(more),
        Err(e) => eprintln!("MIT-BIH record {mitdb} skipped: {e:#}"),
    }
    let mut report = Vec::new();
    for set in &sets {
        for delivery in [Delivery::Whole, Delivery::Seconds] {
            report.push(run(set, delivery).await.with_context(|| set.name.clone())?);
        }
    }
    println!("\n## bytes per sample (system.columns data_compressed_bytes / samples)\n");
    for r in report {
        println!("{r}");
    }
    Ok(())
}

fn ecgplot() -> anyhow::Result<DataSet> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/ecg/ecgplot_12lead.json"
    );
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let mut signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let signal: Vec<Vec<f64>> = leads
        .iter()
        .map(|l| signals.remove(l).unwrap_or_default())
        .collect();
    Ok(DataSet {
        name: "data/ecg: ecgplot 12-lead, 10 s at 500 Hz, mV".into(),
        fs: data["meta"]["fs_hz"].as_f64().context("fs_hz")?,
        leads,
        expected: signal.clone(),
        signal,
        adc: None,
    })
}

/// A WFDB record (`record` without extension), read with the project's own
/// reader: once as the file's ADC counts with its calibration, once as the
/// millivolts they stand for.
fn mitdb_sets(record: &str) -> anyhow::Result<Vec<DataSet>> {
    let mut reader = ecg_formats::open_file(std::path::Path::new(record), &[])?;
    let recording = reader.recording().clone();
    let counts = ecg_formats::read_all(reader.as_mut())?;
    let calibration: Vec<(f64, i64)> = recording
        .calibration
        .iter()
        .map(|c| (c.gain, i64::from(c.baseline)))
        .collect();
    let mv: Vec<Vec<f64>> = counts
        .iter()
        .zip(&calibration)
        .map(|(lead, &(gain, baseline))| {
            lead.iter()
                .map(|&a| (i64::from(a) - baseline) as f64 / gain)
                .collect()
        })
        .collect();
    let name = std::path::Path::new(record)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let minutes = counts[0].len() as f64 / recording.sample_rate_hz / 60.0;
    let title = format!(
        "MIT-BIH {name}, {} ({minutes:.0} min at {} Hz)",
        recording.leads.join(" + "),
        recording.sample_rate_hz
    );
    Ok(vec![
        DataSet {
            name: format!("{title}, ADC counts"),
            fs: recording.sample_rate_hz,
            leads: recording.leads.clone(),
            signal: counts
                .iter()
                .map(|l| l.iter().map(|&a| f64::from(a)).collect())
                .collect(),
            expected: mv.clone(),
            adc: Some(calibration),
        },
        DataSet {
            name: format!("{title}, mV"),
            fs: recording.sample_rate_hz,
            leads: recording.leads,
            signal: mv.clone(),
            expected: mv,
            adc: None,
        },
    ])
}

async fn run(set: &DataSet, delivery: Delivery) -> anyhow::Result<String> {
    let stack = Stack::start("storage").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let mut body = json!({
        "device_id": "bench", "sample_rate_hz": set.fs, "leads": set.leads,
        "started_at": "2026-11-23T08:00:00Z",
    });
    if let Some(calibration) = &set.adc {
        body["adc"] = set
            .leads
            .iter()
            .zip(calibration)
            .map(|(l, (gain, baseline))| (l.clone(), json!({"gain": gain, "baseline": baseline})))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let id = stack.open_ecg(&token, body).await?;
    let how = match delivery {
        Delivery::Whole => {
            put_whole(&stack, &token, id, set).await?;
            "whole signal in one PUT (chunks of 2,000 samples)"
        }
        Delivery::Seconds => {
            post_seconds(&stack, &token, id, set).await?;
            "1-second chunks"
        }
    };
    stack
        .insights_when_complete(&token, id, Duration::from_secs(600))
        .await?;
    let columns: Vec<&[f64]> = set.expected.iter().map(Vec::as_slice).collect();
    stack
        .assert_values_bit_identical(id, &set.leads, &columns)
        .await?;

    let client = stack.clickhouse.client();
    client
        .query(&format!(
            "CREATE TABLE samples_0004 ({BEFORE_COLUMNS}) ENGINE = MergeTree PARTITION BY toYYYYMM(ts)
             ORDER BY (tenant, ecg_id, lead, sample_index)"
        ))
        .execute()
        .await?;
    client
        .query(
            "INSERT INTO samples_0004
             SELECT tenant, ecg_id, lead, sample_index, ts, value, seq, adc FROM samples",
        )
        .execute()
        .await?;
    let samples: u64 = client
        .query("SELECT sum(samples) FROM blocks")
        .fetch_one()
        .await?;
    let blocks: u64 = client
        .query("SELECT count() FROM blocks")
        .fetch_one()
        .await?;
    ensure!(
        samples == set.signal.iter().map(|l| l.len() as u64).sum::<u64>(),
        "blocks hold {samples} samples"
    );
    let mut out = format!(
        "### {}, {how}\n\n{samples} samples in {blocks} blocks\n\n",
        set.name
    );
    for (table, reader) in [("blocks", "samples"), ("samples_0004", "samples_0004")] {
        let (compact, per_column) = measure(&client, table).await?;
        let total: u64 = per_column.iter().map(|c| c.2).sum();
        let per = |b: u64| b as f64 / samples as f64;
        let best = time_sum(&client, reader).await?;
        out.push_str(&format!(
            "{table}: {:.3} B/sample (wide parts; {:.3} as compact parts); \
             `SELECT sum(value) FROM {reader}` {:.0} ms (one thread, best of 7)\n\n\
             | column | codec | bytes | B/sample |\n|---|---|---:|---:|\n",
            per(total),
            per(compact),
            best.as_secs_f64() * 1e3
        ));
        for (column, codec, bytes) in per_column {
            let codec = match codec.as_str() {
                "" => "LZ4 (default)",
                c => c,
            };
            out.push_str(&format!(
                "| {column} | {codec} | {bytes} | {:.4} |\n",
                per(bytes)
            ));
        }
        out.push('\n');
    }
    let clickhouse = stack.clickhouse.clone();
    stack.stop().await?;
    clickhouse
        .server_client()
        .query("DROP DATABASE IF EXISTS ?")
        .bind(clickhouse::sql::Identifier(&clickhouse.database))
        .execute()
        .await?;
    eprintln!("{out}");
    Ok(out)
}

/// Merges `table` into one part, once as compact (the total) and once as wide
/// parts (per column): the compact total and each column's name, codec and
/// compressed bytes (MATERIALIZED and ALIAS columns included: the first are
/// stored, the second are 0).
async fn measure(
    client: &clickhouse::Client,
    table: &str,
) -> anyhow::Result<(u64, Vec<(String, String, u64)>)> {
    let table = clickhouse::sql::Identifier(table);
    client
        .query("OPTIMIZE TABLE ? FINAL")
        .bind(table)
        .execute()
        .await?;
    let compact: u64 = client
        .query(
            "SELECT sum(data_compressed_bytes) FROM system.parts
             WHERE database = currentDatabase() AND table = ? AND active",
        )
        .bind(table.0)
        .fetch_one()
        .await?;
    client
        .query(
            "ALTER TABLE ? MODIFY SETTING min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0",
        )
        .bind(table)
        .execute()
        .await?;
    client
        .query("OPTIMIZE TABLE ? FINAL")
        .bind(table)
        .execute()
        .await?;
    let per_column = client
        .query(
            "SELECT name, if(default_kind = 'ALIAS', 'ALIAS', compression_codec), data_compressed_bytes
             FROM system.columns
             WHERE database = currentDatabase() AND table = ?
             ORDER BY data_compressed_bytes DESC, position",
        )
        .bind(table.0)
        .fetch_all()
        .await?;
    Ok((compact, per_column))
}

/// `SELECT sum(value)` over `table` on one thread: the best of 7.
async fn time_sum(client: &clickhouse::Client, table: &str) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..7 {
        let start = std::time::Instant::now();
        client
            .query("SELECT sum(value) FROM ? SETTINGS max_threads = 1, use_query_cache = 0")
            .bind(clickhouse::sql::Identifier(table))
            .fetch_one::<f64>()
            .await?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// The whole signal as CSV in one `PUT`: `{:?}` writes the shortest decimal
/// that reads back as the same f64 (-0.0 included); counts are integers.
async fn put_whole(
    stack: &Stack,
    token: &str,
    id: uuid::Uuid,
    set: &DataSet,
) -> anyhow::Result<()> {
    let mut csv = set.leads.join(",");
    csv.push('\n');
    for k in 0..set.signal[0].len() {
        for (i, lead) in set.signal.iter().enumerate() {
            if i > 0 {
                csv.push(',');
            }
            match set.adc {
                Some(_) => csv.push_str(&format!("{}", lead[k] as i64)),
                None => csv.push_str(&format!("{:?}", lead[k])),
            }
        }
        csv.push('\n');
    }
    let response = stack
        .http
        .put(format!("{}/v1/ecgs/{id}/signal", stack.ingest))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == 202,
        "PUT answered {status}: {}",
        response.text().await?
    );
    Ok(())
}

/// The signal as a wearable streams it: one JSON chunk per second (serde_json
/// writes each f64 as the shortest decimal that reads back bit for bit).
async fn post_seconds(
    stack: &Stack,
    token: &str,
    id: uuid::Uuid,
    set: &DataSet,
) -> anyhow::Result<()> {
    let per_chunk = set.fs.round() as usize;
    let len = set.signal[0].len();
    let chunks = len.div_ceil(per_chunk);
    for (seq, start) in (0..len).step_by(per_chunk).enumerate() {
        let end = (start + per_chunk).min(len);
        let samples: serde_json::Map<String, Value> = set
            .leads
            .iter()
            .zip(&set.signal)
            .map(|(lead, values)| {
                let values: Vec<Value> = values[start..end]
                    .iter()
                    .map(|&v| match set.adc {
                        Some(_) => json!(v as i64),
                        None => json!(v),
                    })
                    .collect();
                (lead.clone(), Value::Array(values))
            })
            .collect();
        let seq = u32::try_from(seq)?;
        stack
            .send_chunk(token, id, seq, samples.into(), seq as usize + 1 == chunks)
            .await?;
    }
    Ok(())
}

/// Table `samples` as migrations 0001-0004 left it.
const BEFORE_COLUMNS: &str = "
    tenant LowCardinality(String), ecg_id UUID, lead LowCardinality(String),
    sample_index UInt64, ts DateTime64(6, 'UTC'), value Float64 CODEC(ZSTD(1)),
    seq UInt32 CODEC(Delta, ZSTD(1)), adc Nullable(Int32)";
