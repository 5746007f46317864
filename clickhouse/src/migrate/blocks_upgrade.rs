//! Migration 11 on a database as migrations 1-10 left it, filled the way the
//! processor before Storage v2 filled it: every sample and every lead's
//! totals come back bit for bit through the views, the old write path is
//! gone, and every statement can run again. Needs the ClickHouse of `make
//! test` (`ECG_TEST_CLICKHOUSE_URL`).

use clickhouse::Client;
use uuid::Uuid;

use super::old_schema::{
    Expected, LeadChunk, Pre5Sample, old_database, pre5_sample, write_lead_chunk,
};
use super::*;

async fn drop_database(config: &ClickHouseConfig) {
    config
        .server_client()
        .query("DROP DATABASE ?")
        .bind(clickhouse::sql::Identifier(&config.database))
        .execute()
        .await
        .unwrap();
}

/// Every placed sample: of the old table `samples`, or of the view (which
/// also has the samples of chunks not yet placed).
async fn placed_samples(client: &Client) -> Expected {
    let view: u64 = client
        .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'samples' AND engine = 'View'")
        .fetch_one()
        .await
        .unwrap();
    // (ECG, lead, sample_index, value bits, adc, seq).
    type SampleRow = (String, String, Option<u64>, u64, Option<i32>, u32);
    let rows: Vec<SampleRow> = client
        .query(&format!(
            "SELECT toString(ecg_id), lead, toNullable(sample_index), reinterpretAsUInt64(value), adc, seq
             FROM samples WHERE {}",
            if view == 1 { "placed" } else { "1" }
        ))
        .fetch_all()
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, lead, index, bits, adc, seq)| {
            (
                (id.parse().unwrap(), lead, index.unwrap()),
                (bits, adc, seq),
            )
        })
        .collect()
}

async fn lead_chunks(client: &Client) -> Vec<LeadChunk> {
    client
        .query("SELECT ?fields FROM lead_chunks ORDER BY tenant, ecg_id, lead, seq")
        .fetch_all()
        .await
        .unwrap()
}

/// `(name, engine)` of every table and view but the test's own.
async fn tables(client: &Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT name, engine FROM system.tables
             WHERE database = currentDatabase() AND NOT startsWith(name, 'legacy')
             ORDER BY name",
        )
        .fetch_all()
        .await
        .unwrap()
}

/// (sample_index, value bits, adc) of `chunk`'s lead in a window, through
/// the parameterised view.
async fn window(
    client: &Client,
    chunk: &LeadChunk,
    (from, to): (&str, &str),
) -> Vec<(u64, u64, Option<i32>)> {
    client
        .query(
            "SELECT sample_index, reinterpretAsUInt64(value), adc
             FROM samples_window(tenant = ?, ecg_id = ?, lead = ?, from = ?, to = ?)
             ORDER BY sample_index",
        )
        .bind(&chunk.tenant)
        .bind(chunk.ecg_id.to_string())
        .bind(&chunk.lead)
        .bind(from)
        .bind(to)
        .fetch_all()
        .await
        .unwrap()
}

async fn run_statements(client: &Client, statements: &[String]) {
    for statement in statements {
        client.query(statement).execute().await.unwrap();
    }
}

#[tokio::test]
async fn samples_migration_to_blocks_keeps_every_value_and_total_bit_for_bit() {
    let config = ClickHouseConfig::for_test("blocks_upgrade");
    let (expected, chunks) = old_database(&config).await;
    let client = config.client();
    assert_eq!(placed_samples(&client).await, expected);
    assert_eq!(lead_chunks(&client).await, chunks);
    client
        .query(
            "CREATE TABLE legacy_ts ENGINE = Memory AS
             SELECT ecg_id, lead, sample_index, ts FROM samples",
        )
        .execute()
        .await
        .unwrap();
    let insights =
        "SELECT toString(ecg_id), lead, samples, zero_crossings, chunks, last_seq, final_seen
                    FROM lead_insights ORDER BY ecg_id, lead";
    type Insight = (String, String, u64, u64, u64, u32, bool);
    let insights_before: Vec<Insight> = client.query(insights).fetch_all().await.unwrap();

    // A first run that stops after the copy (a crash), whose copy runs twice.
    let statements = statements(MIGRATIONS[10].sql);
    let copy = statements
        .iter()
        .position(|s| s.starts_with("INSERT INTO blocks"))
        .unwrap();
    run_statements(&client, &statements[..=copy]).await;
    run_statements(&client, &statements[copy..=copy]).await;
    // Then the runner applies it.
    assert_eq!(apply(&config, &MIGRATIONS[..11]).await.unwrap(), 1);

    assert_eq!(placed_samples(&client).await, expected);
    assert_eq!(lead_chunks(&client).await, chunks);
    let insights_after: Vec<Insight> = client.query(insights).fetch_all().await.unwrap();
    assert_eq!(insights_after, insights_before);
    let (rows, ts_changed): (u64, u64) = client
        .query(
            "SELECT count(), countIf(s.ts != l.ts)
             FROM legacy_ts AS l JOIN samples AS s USING (ecg_id, lead, sample_index)",
        )
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((rows, ts_changed), (expected.len() as u64, 0));

    // The stored forms chosen per chunk and lead.
    let forms: Vec<(String, String, u32, String, u8, String)> = client
        .query(
            "SELECT toString(ecg_id), lead, seq, toString(codec), scale, toString(raw_at) FROM blocks
             ORDER BY ecg_id, lead, seq",
        )
        .fetch_all()
        .await
        .unwrap();
    let form = |id: u128, lead: &str, seq: u32| {
        let f = forms
            .iter()
            .find(|f| f.0 == Uuid::from_u128(id).to_string() && f.1 == lead && f.2 == seq)
            .unwrap();
        (f.3.as_str(), f.4, f.5.clone())
    };
    // Chunk 0 of lead I: samples 0..6, the special at sample 2 (-0.0) raw.
    assert_eq!(form(0xA, "I", 0), ("decimal", 5, "[2]".into()));
    // Lead II, chunk 2 (samples 10..50): 1e300, 5e-324, -2.2e-308, f64::MAX,
    // 3e9 + 0.5 (a decimal, but not in Int32 at scale 5), -0.0, 0.1 + 0.2, ...
    assert_eq!(
        form(0xA, "II", 2),
        ("decimal", 5, "[2,7,12,17,22,27,32,37]".into())
    );
    assert_eq!(form(0xA, "aVR", 2), ("raw", 0, "[]".into()));
    assert_eq!(form(0xB, "V5", 1), ("adc", 0, "[]".into()));
    assert_eq!(form(0xC, "II", 0), ("adc", 0, "[]".into()));
    assert_eq!(forms.len(), chunks.len());

    // The old write path is gone; the old names are views.
    let views = [
        ("block_values", "View"),
        ("blocks", "MergeTree"),
        ("ecg_progress", "ReplacingMergeTree"),
        ("ecgs", "ReplacingMergeTree"),
        ("failed_chunks", "ReplacingMergeTree"),
        ("lead_chunks", "View"),
        ("lead_insights", "View"),
        ("samples", "View"),
        ("samples_window", "View"),
        ("schema_migrations", "ReplacingMergeTree"),
        ("waiting_blocks", "MergeTree"),
    ];
    let want: Vec<(String, String)> = views
        .iter()
        .map(|(n, e)| (n.to_string(), e.to_string()))
        .collect();
    assert_eq!(tables(&client).await, want);

    // Every statement again (a crash before the migration was recorded):
    // nothing changes.
    let blocks_before: u64 = client
        .query("SELECT count() FROM blocks")
        .fetch_one()
        .await
        .unwrap();
    run_statements(&client, &statements).await;
    let blocks_after: u64 = client
        .query("SELECT count() FROM blocks")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(blocks_after, blocks_before);
    assert_eq!(placed_samples(&client).await, expected);
    assert_eq!(lead_chunks(&client).await, chunks);
    assert_eq!(tables(&client).await, want);

    // The views over the processor's new writes: a chunk waiting for a gap
    // (seq 4 of ECG A, lead I) reads with no position; one already placed but
    // not yet deleted from waiting_blocks (seq 0) reads once, from blocks.
    client
        .query(
            "INSERT INTO waiting_blocks
             SELECT * REPLACE (toUInt32(if(seq = 2, 4, seq)) AS seq, 0 AS first_sample,
                               0 AS samples_total, 0 AS crossings_total, 0 AS last_sign_total)
             FROM (SELECT * FROM blocks WHERE ecg_id = ? AND lead = 'I' AND seq IN (0, 2))",
        )
        .bind(Uuid::from_u128(0xA).to_string())
        .execute()
        .await
        .unwrap();
    let waiting: Vec<(u32, u64, u64, u64)> = client
        .query(
            "SELECT seq, count(), countIf(sample_index IS NULL AND ts IS NULL), countIf(placed)
             FROM samples WHERE ecg_id = ? AND lead = 'I' GROUP BY seq ORDER BY seq",
        )
        .bind(Uuid::from_u128(0xA).to_string())
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        waiting,
        [(0, 6, 0, 6), (1, 4, 0, 4), (2, 40, 0, 40), (4, 40, 40, 0)]
    );
    assert_eq!(placed_samples(&client).await, expected);

    // Windows: a day holds every placed sample of each lead (every stored
    // form); [2 ms, 12 ms) holds samples 1..=5 of lead I (500 Hz).
    let day = ("2026-11-23 08:00:00", "2026-11-24 08:00:00");
    for chunk in chunks.iter().filter(|c| c.seq == 0) {
        let want: Vec<_> = expected
            .iter()
            .filter(|((id, lead, _), _)| *id == chunk.ecg_id && *lead == chunk.lead)
            .map(|((_, _, k), (bits, adc, _))| (*k, *bits, *adc))
            .collect();
        assert_eq!(window(&client, chunk, day).await, want, "{chunk:?}");
    }
    let lead_i = chunks.iter().find(|c| c.lead == "I").unwrap();
    let short = ("2026-11-23 08:00:00.002", "2026-11-23 08:00:00.012");
    let got: Vec<u64> = window(&client, lead_i, short)
        .await
        .into_iter()
        .map(|w| w.0)
        .collect();
    assert_eq!(got, [1, 2, 3, 4, 5]);
    drop_database(&config).await;
}

/// Samples the copy cannot place (no lead_chunks row: a chunk whose two
/// materialized views landed only half) stop the migration before anything
/// is dropped; once fixed, it runs to the end.
#[tokio::test]
async fn a_failed_copy_verification_keeps_the_old_tables() {
    let config = ClickHouseConfig::for_test("blocks_upgrade_refused");
    let (mut expected, chunks) = old_database(&config).await;
    let client = config.client();
    // Chunk 3 of ECG A's lead I: one sample (index 50, 100 ms) in `samples` only.
    let last = chunks
        .iter()
        .find(|c| c.ecg_id == Uuid::from_u128(0xA) && c.lead == "I" && c.seq == 2)
        .unwrap();
    let orphan = LeadChunk {
        seq: 3,
        first_sample: 50,
        samples: 1,
        samples_total: 51,
        is_final: false,
        ..last.clone()
    };
    let mut insert = client.insert::<Pre5Sample>("samples").await.unwrap();
    insert
        .write(&pre5_sample(&orphan, 50, 100_000, 1.25, None))
        .await
        .unwrap();
    insert.end().await.unwrap();

    let err = apply(&config, &MIGRATIONS[..11]).await.unwrap_err();
    assert!(
        matches!(err, MigrationError::Statement { version: 11, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("blocks differ from samples"),
        "{err}"
    );
    let old: Vec<(String, String)> = tables(&client)
        .await
        .into_iter()
        .filter(|(name, _)| {
            ["samples", "lead_chunks", "samples_mv", "lead_chunks_mv"].contains(&name.as_str())
        })
        .collect();
    assert_eq!(
        old,
        [
            ("lead_chunks".to_string(), "MergeTree".to_string()),
            ("lead_chunks_mv".to_string(), "MaterializedView".to_string()),
            ("samples".to_string(), "MergeTree".to_string()),
            ("samples_mv".to_string(), "MaterializedView".to_string()),
        ]
    );

    // The orphan gets its lead_chunks row; the migration completes.
    write_lead_chunk(&client, &orphan).await;
    assert_eq!(apply(&config, &MIGRATIONS[..11]).await.unwrap(), 1);
    expected.insert(
        (Uuid::from_u128(0xA), "I".into(), 50),
        (1.25f64.to_bits(), None, 3),
    );
    assert_eq!(placed_samples(&client).await, expected);
    drop_database(&config).await;
}
