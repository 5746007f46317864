//! Bytes per stored sample of table `samples`, on real ECGs sent through the
//! whole write path: gateway, Kafka, processor (its decimal encoding and
//! insert), the materialized view, MergeTree.
//!
//! For each data set: a fresh stack and database, the ECG uploaded whole,
//! every stored `value` compared bit for bit with what was sent, then
//! `OPTIMIZE TABLE samples FINAL` and the compressed bytes of every column
//! (`system.columns`, which sums the active parts) over `count()`. The same rows are
//! also copied into a table with the layout of migrations 0001-0004
//! (`value Float64 CODEC(ZSTD(1))`, default codecs elsewhere) for comparison.
//! Parts are rewritten as wide parts for the per-column figures (small parts
//! are compact and report only a total, printed too). Also timed: `SELECT
//! sum(value)` over each table, one thread, best of 7 (what the ALIAS costs
//! a reader).
//!
//! Run with `bench/storage.sh`, which also fetches MIT-BIH record 208;
//! `ECG_BENCH_COPIES` (default 20) sets how many copies of the 12-lead ECG
//! are concatenated into the long one.

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
    /// Digital: the calibration of every lead.
    adc: Option<(f64, i64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let copies: usize = std::env::var("ECG_BENCH_COPIES")
        .ok()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(20);
    let mut sets = vec![ecgplot(1)?, ecgplot(copies)?];
    if let Some(path) = std::env::args().nth(1) {
        sets.extend(mitdb(&path)?);
    }
    let mut report = Vec::new();
    for set in &sets {
        report.push(run(set).await.with_context(|| set.name.clone())?);
    }
    println!("\n## bytes per sample (system.columns data_compressed_bytes / count())\n");
    for r in report {
        println!("{r}");
    }
    Ok(())
}

fn ecgplot(copies: usize) -> anyhow::Result<DataSet> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/ecg/ecgplot_12lead.json"
    );
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let mut signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let signal: Vec<Vec<f64>> = leads
        .iter()
        .map(|l| signals.remove(l).unwrap_or_default().repeat(copies))
        .collect();
    Ok(DataSet {
        name: if copies == 1 {
            "ecgplot 12-lead, 10 s at 500 Hz, mV".into()
        } else {
            format!("ecgplot 12-lead, {copies} copies concatenated per lead (REPEATED data), mV")
        },
        fs: data["meta"]["fs_hz"].as_f64().context("fs_hz")?,
        leads,
        expected: signal.clone(),
        signal,
        adc: None,
    })
}

/// MIT-BIH record 208 as `bench/storage.sh` writes it: `{"fs_hz", "adc"}`,
/// sent once in millivolts ((adc - 1024) / 200, as scipy gives it) and once
/// as ADC counts with that calibration.
fn mitdb(path: &str) -> anyhow::Result<Vec<DataSet>> {
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let adc: Vec<i64> = serde_json::from_value(data["adc"].clone())?;
    let fs = data["fs_hz"].as_f64().context("fs_hz")?;
    let mv: Vec<f64> = adc.iter().map(|&a| (a - 1024) as f64 / 200.0).collect();
    let leads = vec!["MLII".to_string()];
    Ok(vec![
        DataSet {
            name: "MIT-BIH 208 MLII, 5 min at 360 Hz, mV".into(),
            fs,
            leads: leads.clone(),
            signal: vec![mv.clone()],
            expected: vec![mv.clone()],
            adc: None,
        },
        DataSet {
            name: "MIT-BIH 208 MLII, 5 min at 360 Hz, ADC counts (gain 200, baseline 1024)".into(),
            fs,
            leads,
            signal: vec![adc.iter().map(|&a| a as f64).collect()],
            expected: vec![mv],
            adc: Some((200.0, 1024)),
        },
    ])
}

async fn run(set: &DataSet) -> anyhow::Result<String> {
    let stack = Stack::start("storage").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let mut body = json!({
        "device_id": "bench", "sample_rate_hz": set.fs, "leads": set.leads,
        "started_at": "2026-11-23T08:00:00Z",
    });
    if let Some((gain, baseline)) = set.adc {
        body["adc"] = set
            .leads
            .iter()
            .map(|l| (l.clone(), json!({"gain": gain, "baseline": baseline})))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let created = send(
        stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .json(&body),
        &token,
    )
    .await?;
    let id: uuid::Uuid = created["id"].as_str().context("id")?.parse()?;
    // The whole signal as CSV: `{:?}` writes the shortest decimal that reads
    // back as the same f64 (-0.0 included); counts are integers.
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
    send(
        stack
            .http
            .put(format!("{}/v1/ecgs/{id}/signal", stack.ingest))
            .header("content-type", "text/csv")
            .body(csv),
        &token,
    )
    .await?;
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
            "CREATE TABLE samples_0004 ({}) ENGINE = MergeTree PARTITION BY toYYYYMM(ts)
             ORDER BY (tenant, ecg_id, lead, sample_index)",
            BEFORE_COLUMNS
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
    let mut out = format!("### {}\n\n", set.name);
    for table in ["samples", "samples_0004"] {
        client
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await?;
        let (rows, compact): (u64, u64) = client
            .query(&format!(
                "SELECT sum(rows), sum(data_compressed_bytes) FROM system.parts
                 WHERE database = currentDatabase() AND table = '{table}' AND active"
            ))
            .fetch_one()
            .await?;
        client
            .query(&format!(
                "ALTER TABLE {table} MODIFY SETTING min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0"
            ))
            .execute()
            .await?;
        client
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await?;
        let per_column: Vec<(String, String, u64)> = client
            .query(&format!(
                "SELECT name, if(default_kind = 'ALIAS', 'ALIAS', compression_codec), data_compressed_bytes
                 FROM system.columns
                 WHERE database = currentDatabase() AND table = '{table}'
                 ORDER BY data_compressed_bytes DESC, position"
            ))
            .fetch_all()
            .await?;
        let total: u64 = per_column.iter().map(|c| c.2).sum();
        let per = |b: u64| b as f64 / rows as f64;
        // What reading `value` costs: one thread, best of 7.
        let mut best = Duration::MAX;
        for _ in 0..7 {
            let start = std::time::Instant::now();
            client
                .query(&format!(
                    "SELECT sum(value) FROM {table} SETTINGS max_threads = 1, use_query_cache = 0"
                ))
                .fetch_one::<f64>()
                .await?;
            best = best.min(start.elapsed());
        }
        out.push_str(&format!(
            "{table}: {rows} samples, {:.3} B/sample (wide parts; {:.3} as compact parts); \
             `SELECT sum(value)` {:.0} ms (one thread, best of 7)\n\n\
             | column | codec | bytes | B/sample |\n|---|---|---:|---:|\n",
            per(total),
            per(compact),
            best.as_secs_f64() * 1e3
        ));
        for (column, codec, bytes) in per_column {
            let codec = if codec.is_empty() {
                "LZ4 (default)"
            } else {
                &codec
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

/// Sends a request expecting 202 Accepted; its JSON answer.
async fn send(request: reqwest::RequestBuilder, token: &str) -> anyhow::Result<Value> {
    let response = request.bearer_auth(token).send().await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    ensure!(status == 202, "answered {status}: {answer}");
    Ok(answer)
}

/// Table `samples` as migrations 0001-0004 left it.
const BEFORE_COLUMNS: &str = "
    tenant LowCardinality(String), ecg_id UUID, lead LowCardinality(String),
    sample_index UInt64, ts DateTime64(6, 'UTC'), value Float64 CODEC(ZSTD(1)),
    seq UInt32 CODEC(Delta, ZSTD(1)), adc Nullable(Int32)";
