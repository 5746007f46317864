//! A device's samples and crossings over time, across its ECGs, bucketed by
//! sample time: one scan of the blocks that overlap the time range, counted
//! as `store::windows` counts (the `signal` kernel per ECG and lead, seeded
//! by the running sign of the block before the range).

use std::collections::{BTreeMap, HashMap};

use clickhouse::Client;
use ecg_clickhouse::blocks::{self, Stored};
use time::OffsetDateTime;
use uuid::Uuid;

use super::blocks::scan;
use crate::series::{Running, Signs, runs, sample_micros};

/// Samples and ECGs of one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketVolume {
    pub start: OffsetDateTime,
    pub ecgs: u64,
    pub samples: u64,
}

/// Crossings of one lead in one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketCrossings {
    pub start: OffsetDateTime,
    pub lead: String,
    pub crossings: u64,
}

/// What a device's buckets hold, by start (buckets without samples absent).
#[derive(Debug, Clone, Default)]
pub struct DeviceBuckets {
    pub volume: Vec<BucketVolume>,
    /// Only leads and buckets with crossings, by start then lead.
    pub crossings: Vec<BucketCrossings>,
}

/// Samples, ECGs and crossings per lead in buckets of `bucket_s` seconds
/// (aligned to the epoch) of sample time `from..to` (µs). The sign before
/// `from` is taken into account, so a crossing is never lost at the edge.
pub async fn device_buckets(
    client: &Client,
    tenant: &str,
    device: &str,
    bucket_s: u64,
    (from, to): (i64, i64),
) -> clickhouse::error::Result<DeviceBuckets> {
    let seeds = blocks::device_signs_before(client, tenant, device, (from, to)).await?;
    let cursor = blocks::device_blocks(client, tenant, device, (from, to))?;
    let seeds = seeds
        .into_iter()
        .map(|(ecg_id, lead, sign)| ((ecg_id, lead), sign))
        .collect();
    let bucket_us = i64::try_from(bucket_s.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    let fold = Device::new((from, to), bucket_us, seeds);
    Ok(scan(cursor, fold, |d, b| d.block(&b)).await?.finish())
}

/// Where a sample's time lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Before,
    /// In the bucket starting at this time (µs).
    In(i64),
    After,
}

/// One bucket's volume so far.
#[derive(Debug, Default)]
struct Volume {
    ecgs: u64,
    samples: u64,
    /// ECGs arrive one after another, so each is counted at its first block.
    last_ecg: Option<Uuid>,
}

/// The fold: blocks by ECG, lead and seq.
#[derive(Debug)]
pub(crate) struct Device {
    from_us: i64,
    to_us: i64,
    bucket_us: i64,
    seeds: HashMap<(Uuid, String), i8>,
    /// The ECG and lead being read, and its last seq.
    at: Option<(Uuid, String, u32)>,
    running: Running,
    volume: BTreeMap<i64, Volume>,
    crossings: BTreeMap<(i64, String), u64>,
}

impl Device {
    pub(crate) fn new(
        (from_us, to_us): (i64, i64),
        bucket_us: i64,
        seeds: HashMap<(Uuid, String), i8>,
    ) -> Self {
        Device {
            from_us,
            to_us,
            bucket_us: bucket_us.max(1),
            seeds,
            at: None,
            running: Running::default(),
            volume: BTreeMap::new(),
            crossings: BTreeMap::new(),
        }
    }

    pub(crate) fn block(&mut self, b: &Stored) {
        match &mut self.at {
            // A row seen twice (the same seq) counts once.
            Some((ecg, lead, seq)) if *ecg == b.ecg_id && *lead == b.lead => {
                if b.seq <= *seq {
                    return;
                }
                *seq = b.seq;
            }
            _ => {
                let key = (b.ecg_id, b.lead.clone());
                self.running = Running::seeded(self.seeds.get(&key).copied().unwrap_or(0));
                self.at = Some((key.0, key.1, b.seq));
            }
        }
        let form = b.form();
        let signs = Signs::of(&form);
        let start = b.first_sample;
        let started_us = micros(b.started_at);
        let (from, to, size) = (self.from_us, self.to_us, self.bucket_us);
        let place = |i: u64| {
            let t = sample_micros(started_us, i, b.sample_rate_hz);
            if t < from {
                Place::Before
            } else if t >= to {
                Place::After
            } else {
                Place::In(t.div_euclid(size) * size)
            }
        };
        for (p, r) in runs(start..start + signs.len() as u64, place) {
            let summary = signs.summary((r.start - start) as usize..(r.end - start) as usize);
            let crossings = self.running.cross(summary);
            let Place::In(bucket) = p else {
                continue;
            };
            let v = self.volume.entry(bucket).or_default();
            v.samples += r.end - r.start;
            if v.last_ecg != Some(b.ecg_id) {
                v.ecgs += 1;
                v.last_ecg = Some(b.ecg_id);
            }
            if crossings > 0 {
                *self.crossings.entry((bucket, b.lead.clone())).or_default() += crossings;
            }
        }
    }

    pub(crate) fn finish(self) -> DeviceBuckets {
        DeviceBuckets {
            volume: self
                .volume
                .into_iter()
                .map(|(start, v)| BucketVolume {
                    start: time_of(start),
                    ecgs: v.ecgs,
                    samples: v.samples,
                })
                .collect(),
            crossings: self
                .crossings
                .into_iter()
                .map(|((start, lead), crossings)| BucketCrossings {
                    start: time_of(start),
                    lead,
                    crossings,
                })
                .collect(),
        }
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn time_of(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blocks::stored;
    use ecg_clickhouse::blocks::Form;

    #[test]
    fn buckets_count_samples_ecgs_and_crossings_seeded_before_the_range() {
        // 500 Hz from the epoch: sample i at 2000 i µs. Range 4 ms..14 ms
        // (samples 2..7), buckets of 4 ms from the epoch: 4..8, 8..12, 12..16.
        let a = [1.0, -1.0, 0.0, 1.0, -1.0];
        let b = [0.0, 1.0, -1.0, 1.0];
        let mut d = Device::new((4_000, 14_000), 4_000, HashMap::new());
        d.block(&stored("I", 0, 0, &Form::physical(&a)));
        d.block(&stored("I", 1, 5, &Form::physical(&b)));
        let mut other = stored("I", 0, 0, &Form::physical(&[-1.0; 9]));
        other.ecg_id = Uuid::from_u128(1);
        d.block(&other);
        let out = d.finish();
        let volume: Vec<(i64, u64, u64)> = out
            .volume
            .iter()
            .map(|v| (micros(v.start), v.ecgs, v.samples))
            .collect();
        // Samples 2, 3 | 4, 5 | 6; the other ECG's 2..7 too.
        assert_eq!(volume, [(4_000, 2, 4), (8_000, 2, 4), (12_000, 2, 2)]);
        let crossings: Vec<(i64, u64)> = out
            .crossings
            .iter()
            .map(|c| (micros(c.start), c.crossings))
            .collect();
        // Sample 3 (+ after sample 1's -, behind a zero) and 4; 6 (+ after -).
        assert_eq!(crossings, [(4_000, 1), (8_000, 1), (12_000, 1)]);
    }
}
