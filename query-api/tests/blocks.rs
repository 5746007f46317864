//! The reads over the block tables (the query API's folds in `store`, and
//! `ecg_clickhouse`'s counts and totals), against the ClickHouse of
//! `make test` (`ECG_TEST_CLICKHOUSE_URL`), each test in its own fresh,
//! migrated database. Blocks are inserted as the processor writes them, cut
//! at uneven places; every count is checked against one pass of the
//! `signal` kernel over the whole signal, every value bit for bit.

use std::borrow::Cow;

use clickhouse::Client;
use ecg_clickhouse::blocks::{self, Block, Form};
use ecg_clickhouse::{ClickHouseConfig, status};
use ecg_query_api::store;
use ecg_schemas::{Calibration, Units};
use ecg_signal::LeadSummary;
use time::OffsetDateTime;
use uuid::Uuid;

const RATE: f64 = 50.0;
/// 2026-02-01T00:00:00Z.
const STARTED_US: i64 = 1_769_904_000_000_000;
/// Where each ECG is cut into chunks: uneven, with 1-sample chunks and a
/// chunk of zeros (samples 300..340 are all zero, see `physical`).
const CUTS: &[usize] = &[37, 38, 100, 299, 300, 340, 341, 512, 800, 1003];
const SAMPLES: usize = 1_200;

async fn database(name: &str) -> Client {
    let config = ClickHouseConfig {
        url: std::env::var("ECG_TEST_CLICKHOUSE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
        database: format!("test_{name}_{}", &Uuid::new_v4().simple().to_string()[..8]),
        ..ClickHouseConfig::default()
    };
    ecg_clickhouse::migrate(&config)
        .await
        .expect("migrating; is `make test` running the stack?");
    config.client()
}

/// A physical lead: decimals, `0.0` and `-0.0` runs (some across chunk
/// edges), computed floats (stored raw), and a long run of zeros.
fn physical(phase: u64) -> Vec<f64> {
    let mut x = phase.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..SAMPLES)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (300..340).contains(&i) {
                return if i % 2 == 0 { 0.0 } else { -0.0 };
            }
            // Runs of a few samples per sign, so crossings fall on and
            // around chunk and window edges.
            let sign = if (i / 3 + (x % 2) as usize) % 2 == 0 {
                1.0
            } else {
                -1.0
            };
            match x % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => sign * (0.1 + 0.2),
                3 => sign * f64::from((x % 1000) as u32) / 3.0,
                _ => sign * f64::from((x % 100_000) as u32 + 1) / 1e5,
            }
        })
        .collect()
}

/// The chunks of a lead, as the processor stores them: each with its own
/// summary and the running totals through it.
fn lead_blocks(
    ecg_id: Uuid,
    device: &str,
    lead: (&str, u8),
    forms: Vec<(usize, Form<'static>)>,
    summaries: Vec<LeadSummary>,
) -> Vec<Block<'static>> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(STARTED_US) * 1000).unwrap();
    let mut total = LeadSummary::EMPTY;
    let n = forms.len();
    forms
        .into_iter()
        .zip(summaries)
        .enumerate()
        .map(|(seq, ((first, form), s))| {
            total = total.then(s);
            Block {
                tenant: "demo".into(),
                ecg_id,
                lead: Cow::Owned(lead.0.to_string()),
                seq: seq as u32,
                lead_index: lead.1,
                device_id: Cow::Owned(device.to_string()),
                units: Units::Millivolts,
                fingerprint: 1,
                is_final: seq + 1 == n,
                sample_rate_hz: RATE,
                started_at: at,
                first_sample: first as u64,
                samples: 0,
                codec: form.codec,
                ints: Cow::Borrowed(&[]),
                scale: 0,
                adc_gain: 0.0,
                adc_baseline: 0,
                raw: Cow::Borrowed(&[]),
                raw_at: Vec::new(),
                first_sign: s.first.as_i8(),
                last_sign: s.last.as_i8(),
                crossings: s.crossings as u32,
                samples_total: total.samples,
                crossings_total: total.crossings,
                last_sign_total: total.last.as_i8(),
                beats: Vec::new(),
                beat_rr: Vec::new(),
                last_beat: 0,
                analytic_states: Vec::new(),
                lo: None,
                hi: None,
                at_extremes: None,
                kafka_partition: 0,
                kafka_offset: seq as i64,
                processed_at: at,
                produced_at: at,
            }
            .with_form(form)
        })
        .collect()
}

fn chunks() -> Vec<std::ops::Range<usize>> {
    let mut bounds = vec![0];
    bounds.extend(CUTS);
    bounds.push(SAMPLES);
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Physical ECG: leads I and II.
fn physical_blocks(id: Uuid, device: &str, leads: &[Vec<f64>]) -> Vec<Block<'static>> {
    let mut rows = Vec::new();
    for (l, (name, values)) in ["I", "II"].iter().zip(leads).enumerate() {
        let forms = chunks()
            .into_iter()
            .map(|r| (r.start, Form::physical(&values[r]).into_owned()))
            .collect();
        let sums = chunks()
            .into_iter()
            .map(|r| LeadSummary::of(&values[r]))
            .collect();
        rows.extend(lead_blocks(id, device, (name, l as u8), forms, sums));
    }
    rows
}

/// Digital ECG of one lead: counts around baseline 1024, 1024 being zero.
fn digital_blocks(id: Uuid, counts: &[i32]) -> Vec<Block<'static>> {
    let c = Calibration {
        gain: 3.0,
        baseline: 1024,
    };
    let forms = chunks()
        .into_iter()
        .map(|r| (r.start, Form::adc(&counts[r], c).into_owned()))
        .collect();
    let sums = chunks()
        .into_iter()
        .map(|r| LeadSummary::of_digital_i32(&counts[r], 1024))
        .collect();
    lead_blocks(id, "d", ("I", 0), forms, sums)
}

/// Crossings of each window of `per_window` samples within `from..to`, by
/// one pass of the kernel: a window's crossings are those of the prefix
/// through its end less those of the prefix before its start.
fn expected(
    summary: impl Fn(usize) -> u64,
    per_window: f64,
    from: u64,
    to: u64,
) -> Vec<(u64, u64)> {
    let window = |i: u64| (i as f64 / per_window).floor() as u64;
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let w = window(start);
        let mut end = start;
        while end < to && window(end) == w {
            end += 1;
        }
        let n = summary(end as usize) - summary(start as usize);
        if n > 0 {
            out.push((w, n));
        }
        start = end;
    }
    out
}

trait Owned {
    fn into_owned(self) -> Form<'static>;
}

impl Owned for Form<'_> {
    fn into_owned(self) -> Form<'static> {
        Form {
            codec: self.codec,
            ints: Cow::Owned(self.ints.into_owned()),
            scale: self.scale,
            adc_gain: self.adc_gain,
            adc_baseline: self.adc_baseline,
            raw: Cow::Owned(self.raw.into_owned()),
            raw_at: self.raw_at,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_over_blocks_equal_one_pass_of_the_kernel_from_any_sample() {
    let client = database("query_blocks_windows").await;
    let leads = [physical(1), physical(2)];
    let (id, digital) = (Uuid::new_v4(), Uuid::new_v4());
    // The physical lead I as counts: zeros stay exactly the baseline.
    let counts: Vec<i32> = leads[0]
        .iter()
        .map(|&v| 1024 + (v * 1e3).round() as i32)
        .collect();
    let mut rows = physical_blocks(id, "p", &leads);
    rows.extend(digital_blocks(digital, &counts));
    blocks::insert(&client, blocks::PLACED, &rows)
        .await
        .unwrap();
    let forms: Vec<_> = rows.iter().map(|b| b.form().codec).collect();
    assert!(forms.contains(&blocks::Codec::Raw) && forms.contains(&blocks::Codec::Decimal));

    let prefix = |values: &[f64]| {
        let v = values.to_vec();
        move |n: usize| LeadSummary::of(&v[..n]).crossings
    };
    let digital_prefix = |n: usize| LeadSummary::of_digital_i32(&counts[..n], 1024).crossings;
    // Whole ECG, 1 s windows; from mid-chunk (37 + 1), from a chunk edge
    // (300, then all zeros), from inside the zeros, to mid-chunk; windows
    // of a fractional number of samples.
    for (per_window, from, to) in [
        (50.0, 0, SAMPLES as u64),
        (50.0, 38, 777),
        (50.0, 300, 1003),
        (50.0, 339, 1200),
        (37.5, 101, 1190),
        (500.0, 512, 513),
    ] {
        let got = store::crossing_windows(&client, "demo", id, per_window, from, to)
            .await
            .unwrap();
        for (lead, values) in ["I", "II"].iter().zip(&leads) {
            let got: Vec<(u64, u64)> = got
                .iter()
                .filter(|c| c.lead == *lead)
                .map(|c| (c.window, c.crossings))
                .collect();
            let want = expected(prefix(values), per_window, from, to);
            assert_eq!(
                got, want,
                "lead {lead}, {per_window} per window, {from}..{to}"
            );
        }
        let got: Vec<(u64, u64)> =
            store::crossing_windows(&client, "demo", digital, per_window, from, to)
                .await
                .unwrap()
                .iter()
                .map(|c| (c.window, c.crossings))
                .collect();
        let want = expected(digital_prefix, per_window, from, to);
        assert_eq!(got, want, "digital, {per_window} per window, {from}..{to}");
    }

    // The totals are the last block's running totals: one pass.
    let totals = blocks::lead_totals(&client, "demo", id).await.unwrap();
    for t in &totals {
        let values = if t.lead == "I" { &leads[0] } else { &leads[1] };
        assert_eq!(t.samples, SAMPLES as u64);
        assert_eq!(
            t.zero_crossings,
            LeadSummary::of(values).crossings,
            "{}",
            t.lead
        );
    }
    assert_eq!(totals.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plot_and_device_buckets_and_counts_read_the_blocks() {
    let client = database("query_blocks_buckets").await;
    let leads = [physical(3), physical(4)];
    let id = Uuid::new_v4();
    client
        .query(
            "INSERT INTO ecgs (tenant, ecg_id, device_id, sample_rate_hz, leads, units, started_at)
             VALUES ('demo', ?, 'dev', 50, ['I', 'II'], 'mV', '2026-02-01 00:00:00')",
        )
        .bind(id.to_string())
        .execute()
        .await
        .unwrap();
    let rows = physical_blocks(id, "dev", &leads);
    // Chunk 8 is missing: 0..=7 are placed, 9 and 10 wait in
    // waiting_blocks (their positions unknown to the processor).
    let (placed, waiting): (Vec<_>, Vec<_>) = rows.into_iter().partition(|b| b.seq < 8);
    blocks::insert(&client, blocks::PLACED, &placed)
        .await
        .unwrap();
    let waiting: Vec<_> = waiting.into_iter().filter(|b| b.seq != 8).collect();
    blocks::insert(&client, blocks::WAITING, &waiting)
        .await
        .unwrap();
    let placed_end = CUTS[7] as u64; // chunks 0..=7 end at 512

    // Plot buckets: min and max of each 7 samples from 5, bit for bit; the
    // waiting chunks are not placed, so not plotted.
    let lead_names = vec!["II".to_string(), "I".to_string()];
    let got = store::sample_buckets(&client, "demo", id, &lead_names, 5, 700, 7)
        .await
        .unwrap();
    let mut want = Vec::new();
    let end = placed_end as usize;
    for (lead, values) in ["I", "II"].iter().zip(&leads) {
        for start in (5..end).step_by(7) {
            let slice = &values[start..(start + 7).min(end)];
            let min = slice
                .iter()
                .copied()
                .fold(slice[0], |a, v| if v < a { v } else { a });
            let max = slice
                .iter()
                .copied()
                .fold(slice[0], |a, v| if v > a { v } else { a });
            want.push((lead.to_string(), start as u64, min.to_bits(), max.to_bits()));
        }
    }
    let got: Vec<_> = got
        .into_iter()
        .map(|b| (b.lead, b.first, b.min.to_bits(), b.max.to_bits()))
        .collect();
    assert_eq!(got, want);

    // Device buckets of 2 s (100 samples) from 1.1 s: samples 55..512 are
    // placed; crossings seeded by the sign before.
    let from_us = STARTED_US + 1_100_000;
    let found = store::device_buckets(
        &client,
        "demo",
        "dev",
        2,
        (from_us, STARTED_US + 3_600_000_000),
    )
    .await
    .unwrap();
    let volume: Vec<(i64, u64, u64)> = found
        .volume
        .iter()
        .map(|v| {
            (
                (v.start.unix_timestamp_nanos() / 1000) as i64,
                v.ecgs,
                v.samples,
            )
        })
        .collect();
    let mut want_volume = Vec::new();
    let mut start = 55;
    while start < placed_end {
        let end = ((start / 100 + 1) * 100).min(placed_end);
        let t = STARTED_US + (start / 100 * 100) as i64 * 20_000;
        want_volume.push((t, 1, 2 * (end - start)));
        start = end;
    }
    assert_eq!(volume, want_volume);
    for (lead, values) in ["I", "II"].iter().zip(&leads) {
        let got: Vec<(i64, u64)> = found
            .crossings
            .iter()
            .filter(|c| c.lead == *lead)
            .map(|c| ((c.start.unix_timestamp_nanos() / 1000) as i64, c.crossings))
            .collect();
        let prefix = |n: usize| LeadSummary::of(&values[..n]).crossings;
        let want: Vec<(i64, u64)> = expected(prefix, 100.0, 55, placed_end)
            .into_iter()
            .map(|(w, n)| (STARTED_US + w as i64 * 2_000_000, n))
            .collect();
        assert_eq!(got, want, "lead {lead}");
    }

    // Counts: placed chunks and samples from blocks, waiting ones beyond.
    let written = blocks::written(&client, "demo", id).await.unwrap();
    assert_eq!((written.chunks, written.samples), (8, 2 * placed_end));
    assert!(!written.final_seen);
    let waiting = blocks::waiting(&client, "demo", id).await.unwrap();
    let want: Vec<(u32, u64)> = chunks()[9..]
        .iter()
        .enumerate()
        .map(|(k, r)| (9 + k as u32, 2 * r.len() as u64))
        .collect();
    let got: Vec<(u32, u64)> = waiting.iter().map(|w| (w.seq, w.samples)).collect();
    assert_eq!(got, want);
    let activity = status::activity(&client, "demo", id).await.unwrap();
    assert!(activity.last_at > OffsetDateTime::UNIX_EPOCH);
}
