//! A database as migrations 1-10 left it, written the way the processor
//! before Storage v2 wrote it (one insert into `chunk_ingest` per batch,
//! fanned out by the materialized views into `samples` and `lead_chunks`),
//! and what each of its samples and chunks must read: the starting point of
//! the tests of migration 11 (`blocks_upgrade`).

use std::collections::BTreeMap;

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{MIGRATIONS, apply};
use crate::ClickHouseConfig;
use crate::decimal::Decimals;

/// A row of `chunk_ingest` as the processor before Storage v2 wrote it
/// (`ChunkLeadRow` of processor/src/sink.rs, with migration 9's
/// fingerprint): the samples as `f64`, their decimal form, or the ADC
/// counts and calibration.
#[derive(Debug, Clone, Row, Serialize)]
struct OldChunkLead {
    tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    ecg_id: Uuid,
    device_id: String,
    lead: String,
    lead_index: u8,
    seq: u32,
    fingerprint: u64,
    is_final: bool,
    sample_rate_hz: f64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    started_at: OffsetDateTime,
    first_sample: u64,
    values: Vec<f64>,
    adc_values: Vec<i32>,
    value_ints: Vec<i64>,
    value_scale: u8,
    adc_gain: f64,
    adc_baseline: i32,
    first_sign: i8,
    last_sign: i8,
    crossings: u32,
    samples_total: u64,
    crossings_total: u64,
    last_sign_total: i8,
    kafka_partition: i32,
    kafka_offset: i64,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    processed_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    produced_at: OffsetDateTime,
}

/// A row of `lead_chunks`, the old table and the view alike.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub(super) struct LeadChunk {
    pub(super) tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub(super) ecg_id: Uuid,
    pub(super) lead: String,
    pub(super) lead_index: u8,
    pub(super) seq: u32,
    pub(super) fingerprint: u64,
    pub(super) device_id: String,
    pub(super) is_final: bool,
    pub(super) sample_rate_hz: f64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub(super) started_at: OffsetDateTime,
    pub(super) first_sample: u64,
    pub(super) samples: u32,
    pub(super) first_sign: i8,
    pub(super) last_sign: i8,
    pub(super) crossings: u32,
    pub(super) samples_total: u64,
    pub(super) crossings_total: u64,
    pub(super) last_sign_total: i8,
    pub(super) kafka_partition: i32,
    pub(super) kafka_offset: i64,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub(super) processed_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub(super) produced_at: OffsetDateTime,
}

/// A row of the old `samples` as migration 5's mutation left a digital
/// sample written before it: `raw`, the count kept, no calibration.
#[derive(Debug, Row, Serialize)]
pub(super) struct Pre5Sample {
    tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    ecg_id: Uuid,
    lead: String,
    sample_index: u64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    ts: OffsetDateTime,
    seq: u32,
    adc: Option<i32>,
    /// `Enum8('raw' = 0, ...)`.
    value_codec: i8,
    value_int: i64,
    value_scale: u8,
    value_raw: f64,
    adc_gain: f64,
    adc_baseline: i32,
}

/// One ECG as the old processor received it.
struct Ecg {
    tenant: &'static str,
    id: Uuid,
    fs: f64,
    leads: Vec<&'static str>,
    /// Digital: every lead's (gain, baseline).
    calibration: Option<Vec<(f64, i32)>>,
    /// Per chunk, per lead: the samples (ADC counts as `f64` when digital).
    chunks: Vec<Vec<Vec<f64>>>,
}

/// Where a sample is and what it must read: (ECG, lead, sample_index) to
/// (value bits, adc, seq).
pub(super) type Expected = BTreeMap<(Uuid, String, u64), (u64, Option<i32>, u32)>;

fn started_at() -> OffsetDateTime {
    // 2026-11-23 08:00:00 UTC.
    OffsetDateTime::from_unix_timestamp(1_795_420_800).unwrap()
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// The chunk's own zero-crossing summary: (first sign, last sign, crossings).
fn summary(signs: &[i8]) -> (i8, i8, u32) {
    let nz: Vec<i8> = signs.iter().copied().filter(|&s| s != 0).collect();
    let crossings = nz.windows(2).filter(|w| w[0] != w[1]).count() as u32;
    (
        nz.first().copied().unwrap_or(0),
        nz.last().copied().unwrap_or(0),
        crossings,
    )
}

/// The rows the old processor wrote for `ecg`, and the samples they hold.
fn old_rows(ecg: &Ecg, expected: &mut Expected) -> Vec<OldChunkLead> {
    let mut rows = Vec::new();
    // Per lead: samples, crossings, last sign, from sample 0.
    let mut totals = vec![(0u64, 0u64, 0i8); ecg.leads.len()];
    let mut first_sample = 0u64;
    let last = ecg.chunks.len() - 1;
    for (seq, chunk) in ecg.chunks.iter().enumerate() {
        for (i, lead) in ecg.leads.iter().enumerate() {
            let sent = &chunk[i];
            let (values, adc_values, decimals, (gain, baseline)) = match &ecg.calibration {
                Some(c) => {
                    let (gain, baseline) = c[i];
                    let counts: Vec<i32> = sent.iter().map(|&a| a as i32).collect();
                    let values = counts
                        .iter()
                        .map(|&a| (i64::from(a) - i64::from(baseline)) as f64 / gain)
                        .collect();
                    (values, counts, Decimals::default(), (gain, baseline))
                }
                None => (sent.clone(), vec![], Decimals::encode(sent), (0.0, 0)),
            };
            let signs: Vec<i8> = match &ecg.calibration {
                Some(_) => adc_values
                    .iter()
                    .map(|&a| sign((i64::from(a) - i64::from(baseline)) as f64))
                    .collect(),
                None => values.iter().map(|&v| sign(v)).collect(),
            };
            let (first, last_sign, crossings) = summary(&signs);
            let t = &mut totals[i];
            t.0 += values.len() as u64;
            t.1 += u64::from(crossings) + u64::from(t.2 != 0 && first != 0 && t.2 != first);
            if last_sign != 0 {
                t.2 = last_sign;
            }
            for (k, v) in values.iter().enumerate() {
                let adc = adc_values.get(k).copied();
                expected.insert(
                    (ecg.id, lead.to_string(), first_sample + k as u64),
                    (v.to_bits(), adc, seq as u32),
                );
            }
            rows.push(OldChunkLead {
                tenant: ecg.tenant.into(),
                ecg_id: ecg.id,
                device_id: "watch-17".into(),
                lead: lead.to_string(),
                lead_index: i as u8,
                seq: seq as u32,
                // Chunks written before migration 9 have none (0).
                fingerprint: if ecg.calibration.is_some() {
                    0xF00D + seq as u64
                } else {
                    0
                },
                is_final: seq == last,
                sample_rate_hz: ecg.fs,
                started_at: started_at(),
                first_sample,
                values,
                adc_values,
                value_ints: decimals.ints,
                value_scale: decimals.scale,
                adc_gain: gain,
                adc_baseline: baseline,
                first_sign: first,
                last_sign,
                crossings,
                samples_total: t.0,
                crossings_total: t.1,
                last_sign_total: t.2,
                kafka_partition: 3,
                kafka_offset: 1000 + seq as i64,
                processed_at: started_at() + Duration::milliseconds(1500 + seq as i64),
                produced_at: started_at() + Duration::milliseconds(1000 + seq as i64),
            });
        }
        first_sample += chunk[0].len() as u64;
    }
    rows
}

fn lead_chunk(r: &OldChunkLead) -> LeadChunk {
    LeadChunk {
        tenant: r.tenant.clone(),
        ecg_id: r.ecg_id,
        lead: r.lead.clone(),
        lead_index: r.lead_index,
        seq: r.seq,
        fingerprint: r.fingerprint,
        device_id: r.device_id.clone(),
        is_final: r.is_final,
        sample_rate_hz: r.sample_rate_hz,
        started_at: r.started_at,
        first_sample: r.first_sample,
        samples: r.values.len() as u32,
        first_sign: r.first_sign,
        last_sign: r.last_sign,
        crossings: r.crossings,
        samples_total: r.samples_total,
        crossings_total: r.crossings_total,
        last_sign_total: r.last_sign_total,
        kafka_partition: r.kafka_partition,
        kafka_offset: r.kafka_offset,
        processed_at: r.processed_at,
        produced_at: r.produced_at,
    }
}

/// The test ECGs: physical decimals with the values that have no decimal
/// form (-0.0, 0.1 + 0.2, 1e300, subnormals, a decimal beyond Int32), a lead
/// of computed floats, and a digital ECG with extreme counts.
fn ecgs() -> Vec<Ecg> {
    let physical = |k: usize, lead: usize| -> f64 {
        let specials = [
            -0.0,
            0.1 + 0.2,
            1e300,
            5e-324,
            -2.2e-308,
            f64::MAX,
            3e9 + 0.5,
            f64::MIN_POSITIVE,
        ];
        match lead {
            // Mostly decimals, a special now and then.
            0 | 1 if k % 5 == 2 => specials[(k / 5 + lead) % specials.len()],
            // Multiples of 4.88 uV, as decimals at scale 5.
            0 | 1 => ((k as i64 * 977 + lead as i64 * 31) % 4000 - 2000) as f64 * 488.0 / 1e5,
            // Computed floats: no decimal form.
            _ => (k as f64 + 1.0) / 3.0 * if k % 2 == 0 { 1.0 } else { -1.0 },
        }
    };
    let chunk_lengths = [6usize, 4, 40];
    let mut start = 0;
    let mut chunks = Vec::new();
    for n in chunk_lengths {
        chunks.push(
            (0..3)
                .map(|lead| (start..start + n).map(|k| physical(k, lead)).collect())
                .collect(),
        );
        start += n;
    }
    let counts = [
        1024.0,
        975.0,
        f64::from(i32::MAX),
        f64::from(i32::MIN),
        0.0,
        -1.0,
        1025.0,
        1754.0,
        1024.0,
        2047.0,
    ];
    vec![
        Ecg {
            tenant: "t",
            id: Uuid::from_u128(0xA),
            fs: 500.0,
            leads: vec!["I", "II", "aVR"],
            calibration: None,
            chunks,
        },
        Ecg {
            tenant: "u",
            id: Uuid::from_u128(0xB),
            fs: 360.0,
            leads: vec!["MLII", "V5"],
            calibration: Some(vec![(200.0, 1024), (100.5, -3)]),
            chunks: vec![
                vec![counts[..5].to_vec(), counts[5..].to_vec()],
                vec![counts[5..].to_vec(), counts[..5].to_vec()],
            ],
        },
    ]
}

async fn register(client: &Client, ecg: &Ecg) {
    let (gains, baselines): (Vec<f64>, Vec<i32>) = ecg
        .calibration
        .clone()
        .unwrap_or_default()
        .into_iter()
        .unzip();
    client
        .query(
            "INSERT INTO ecgs (tenant, ecg_id, device_id, sample_rate_hz, leads, units, adc_gain, adc_baseline, started_at)
             VALUES (?, ?, 'watch-17', ?, ?, 'mV', ?, ?, '2026-11-23 08:00:00')",
        )
        .bind(ecg.tenant)
        .bind(ecg.id.to_string())
        .bind(ecg.fs)
        .bind(&ecg.leads)
        .bind(gains)
        .bind(baselines)
        .execute()
        .await
        .unwrap();
}

/// ECG C: a digital chunk stored before migration 5, as that migration's
/// mutation left it: `raw`, the counts kept, the calibration in `ecgs` only.
async fn write_pre5_digital(client: &Client, expected: &mut Expected) -> LeadChunk {
    let ecg = Ecg {
        tenant: "t",
        id: Uuid::from_u128(0xC),
        fs: 250.0,
        leads: vec!["II"],
        calibration: Some(vec![(200.0, 1024)]),
        chunks: vec![vec![vec![1024.0, 1100.0, 900.0, 1024.0, 1500.0, -7.0]]],
    };
    register(client, &ecg).await;
    let row = old_rows(&ecg, expected).remove(0);
    // Older than migrations 7 and 9: no Kafka timestamp, no fingerprint.
    let chunk = LeadChunk {
        produced_at: OffsetDateTime::UNIX_EPOCH,
        fingerprint: 0,
        ..lead_chunk(&row)
    };
    let mut insert = client.insert::<Pre5Sample>("samples").await.unwrap();
    for (k, (&value, &adc)) in row.values.iter().zip(&row.adc_values).enumerate() {
        let micros = (k as f64 * 1e6 / ecg.fs).round() as i64;
        insert
            .write(&pre5_sample(&chunk, k as u64, micros, value, Some(adc)))
            .await
            .unwrap();
    }
    insert.end().await.unwrap();
    write_lead_chunk(client, &chunk).await;
    chunk
}

/// A raw sample of `chunk` in the old `samples`, written directly.
pub(super) fn pre5_sample(
    chunk: &LeadChunk,
    sample_index: u64,
    micros: i64,
    value: f64,
    adc: Option<i32>,
) -> Pre5Sample {
    Pre5Sample {
        tenant: chunk.tenant.clone(),
        ecg_id: chunk.ecg_id,
        lead: chunk.lead.clone(),
        sample_index,
        ts: started_at() + Duration::microseconds(micros),
        seq: chunk.seq,
        adc,
        value_codec: 0,
        value_int: 0,
        value_scale: 0,
        value_raw: value,
        adc_gain: 0.0,
        adc_baseline: 0,
    }
}

pub(super) async fn write_lead_chunk(client: &Client, chunk: &LeadChunk) {
    let mut insert = client.insert::<LeadChunk>("lead_chunks").await.unwrap();
    insert.write(chunk).await.unwrap();
    insert.end().await.unwrap();
}

/// A database with migrations 1-10 and the old processor's rows; returns
/// what every sample and chunk must read.
pub(super) async fn old_database(config: &ClickHouseConfig) -> (Expected, Vec<LeadChunk>) {
    assert_eq!(apply(config, &MIGRATIONS[..10]).await.unwrap(), 10);
    let client = config.client();
    let mut expected = Expected::new();
    let mut chunks = Vec::new();
    for ecg in ecgs() {
        register(&client, &ecg).await;
        let rows = old_rows(&ecg, &mut expected);
        chunks.extend(rows.iter().map(lead_chunk));
        // One insert per chunk, as the old processor's batches.
        for seq in 0..ecg.chunks.len() as u32 {
            let mut insert = client.insert::<OldChunkLead>("chunk_ingest").await.unwrap();
            for row in rows.iter().filter(|r| r.seq == seq) {
                insert.write(row).await.unwrap();
            }
            insert.end().await.unwrap();
        }
    }
    chunks.push(write_pre5_digital(&client, &mut expected).await);
    chunks.sort_by_key(|c| (c.tenant.clone(), c.ecg_id, c.lead.clone(), c.seq));
    (expected, chunks)
}
