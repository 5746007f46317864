//! What an analyst's time window of one lead costs on a 24-hour Holter
//! stored as blocks: ClickHouse's own `read_rows`, `read_bytes`, duration and
//! memory from `system.query_log`, for the ways `clickhouse/README.md`
//! documents (the parameterised view `samples_window`, a filter on the block
//! bounds `first_ts`/`last_ts`) and the one it warns against (a `ts` filter
//! on the `samples` view, which decodes every block of the lead first).
//!
//! The Holter is written straight into `blocks` by SQL, as the gateway's
//! `PUT` would cut it (12 leads at 500 Hz, 24 hours, 2,000 samples per block:
//! 259,200 blocks, 518 M samples, ADC counts of a sine with noise), in a
//! database of its own (`bench_window`, migrated, dropped at the end). Each
//! query runs 5 times; the table shows the fastest run.
//!
//!   ECG_TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 cargo run -p ecg-e2e --example window
//!
//! The server must keep `system.query_log` (dev/clickhouse_server.py
//! configures it).

use std::time::Instant;

use anyhow::{Context as _, ensure};
use ecg_clickhouse::ClickHouseConfig;

const TENANT: &str = "bench";
const ECG: &str = "0b5e0000-0000-4000-8000-000000024040";
const STARTED: &str = "2026-12-01 00:00:00";
const RATE: u64 = 500;
const BLOCK: u64 = 2_000;
const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ClickHouseConfig {
        url: ecg_e2e::clickhouse_url(),
        database: "bench_window".into(),
        ..ClickHouseConfig::default()
    };
    let server = config.server_client();
    server
        .query("DROP DATABASE IF EXISTS bench_window")
        .execute()
        .await?;
    ecg_clickhouse::migrate(&config).await?;
    let client = config.client();

    let blocks_per_lead = 24 * 3600 * RATE / BLOCK;
    let started = Instant::now();
    client
        .query(
            "INSERT INTO blocks (tenant, ecg_id, lead, seq, lead_index, device_id, units,
                fingerprint, is_final, sample_rate_hz, started_at, first_sample, samples, codec,
                ints, scale, adc_gain, adc_baseline, raw, raw_at, first_sign, last_sign,
                crossings, samples_total, crossings_total, last_sign_total, kafka_partition,
                kafka_offset, processed_at, produced_at)
             SELECT ?, toUUID(?), ?[l + 1], s, l, 'holter-1', 'mV', cityHash64(s, l),
                s + 1 = ?, ?, toDateTime64(?, 6, 'UTC'), s * ?, ?, 'adc',
                arrayMap(k -> toInt32(1024 + 200 * sin(2 * pi() * 1.2 * (s * ? + k) / ?)
                                      + cityHash64(s, l, k) % 9), range(?)),
                0, 200, 1024, [], [], 1, 1, 0, (s + 1) * ?, 0, 1, 0, s, now64(3), now64(3)
             FROM (SELECT toUInt32(intDiv(number, 12)) AS s, toUInt8(number % 12) AS l
                   FROM numbers(?))
             SETTINGS max_block_size = 512, max_insert_block_size = 8192",
        )
        .bind(TENANT)
        .bind(ECG)
        .bind(LEADS.as_slice())
        .bind(blocks_per_lead)
        .bind(RATE)
        .bind(STARTED)
        .bind(BLOCK)
        .bind(BLOCK)
        .bind(BLOCK)
        .bind(RATE)
        .bind(BLOCK)
        .bind(BLOCK)
        .bind(blocks_per_lead * LEADS.len() as u64)
        .execute()
        .await
        .context("writing the Holter")?;
    client
        .query("OPTIMIZE TABLE blocks FINAL")
        .execute()
        .await?;
    let (blocks, samples): (u64, u64) = client
        .query("SELECT count(), sum(samples) FROM blocks")
        .fetch_one()
        .await?;
    println!(
        "Holter: {blocks} blocks, {samples} samples, written and merged in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );

    // Ten seconds of lead II at 12:00 (window [from, to)).
    let from = "2026-12-01 12:00:00";
    let to = "2026-12-01 12:00:10";
    let queries = [
        (
            "`samples_window` view",
            "SELECT count(), sum(value) FROM samples_window(tenant = {t:String},
                 ecg_id = {e:UUID}, lead = 'II', from = {f:DateTime64(6, 'UTC')},
                 to = {u:DateTime64(6, 'UTC')})",
        ),
        (
            "`block_values` on the block bounds",
            "SELECT count(), sum(value) FROM block_values
             ARRAY JOIN values AS value, range(length(values)) AS k
             WHERE tenant = {t:String} AND ecg_id = {e:UUID} AND lead = 'II' AND placed
               AND first_ts < {u:DateTime64(6, 'UTC')} AND last_ts >= {f:DateTime64(6, 'UTC')}
               AND first_sample + k >= 500 * 43200 AND first_sample + k < 500 * 43210",
        ),
        (
            "`samples` view, `ts` filter",
            "SELECT count(), sum(value) FROM samples
             WHERE tenant = {t:String} AND ecg_id = {e:UUID} AND lead = 'II'
               AND ts >= {f:DateTime64(6, 'UTC')} AND ts < {u:DateTime64(6, 'UTC')}",
        ),
    ];
    let mut table = String::from(
        "| query | rows returned | read_rows | read_bytes | duration | memory |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (i, (name, sql)) in queries.iter().enumerate() {
        let mut count = 0;
        for run in 0..5 {
            let (n, _sum): (u64, f64) = client
                .query(sql)
                .param("t", TENANT)
                .param("e", ECG)
                .param("f", from)
                .param("u", to)
                .with_setting("log_comment", format!("window bench {i} run {run}"))
                .with_setting("use_query_cache", "0")
                .fetch_one()
                .await
                .with_context(|| name.to_string())?;
            count = n;
        }
        ensure!(count == 10 * RATE, "{name}: {count} samples in the window");
        client.query("SYSTEM FLUSH LOGS").execute().await?;
        let (read_rows, read_bytes, ms, memory): (u64, u64, u64, u64) = client
            .query(
                "SELECT read_rows, read_bytes, query_duration_ms, memory_usage
                 FROM system.query_log
                 WHERE type = 'QueryFinish' AND startsWith(log_comment, ?)
                 ORDER BY query_duration_ms LIMIT 1",
            )
            .bind(format!("window bench {i} run"))
            .fetch_optional()
            .await?
            .context("no query_log rows: does the server keep system.query_log?")?;
        table.push_str(&format!(
            "| {name} | {count} | {read_rows} | {:.1} MB | {ms} ms | {:.1} MB |\n",
            read_bytes as f64 / 1e6,
            memory as f64 / 1e6
        ));
    }
    println!("A 10-second window of lead II (fastest of 5 runs, from system.query_log):\n");
    println!("{table}");
    server
        .query("DROP DATABASE IF EXISTS bench_window")
        .execute()
        .await?;
    Ok(())
}
