//! Samples for plotting: each bucket of consecutive samples reduced to its
//! min and max, so a peak inside a bucket is still drawn. Read from the
//! blocks that overlap the range, decoded bit for bit, bucketed here.

use clickhouse::Client;
use ecg_clickhouse::blocks::{self, Stored};
use uuid::Uuid;

use super::blocks::scan;
use crate::series::runs;

/// One bucket of one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub lead: String,
    /// The bucket's first sample present.
    pub first: u64,
    pub min: f64,
    pub max: f64,
}

/// Samples `from..to` of `leads`, in buckets of `bucket` consecutive samples
/// counted from `from`, ordered by lead then time.
pub async fn sample_buckets(
    client: &Client,
    tenant: &str,
    id: Uuid,
    leads: &[String],
    from: u64,
    to: u64,
    bucket: u64,
) -> clickhouse::error::Result<Vec<Bucket>> {
    let cursor = blocks::overlapping_leads(client, tenant, id, leads, (from, to))?;
    let buckets = Buckets::new(from..to, bucket);
    Ok(scan(cursor, buckets, |s, b| s.block(&b)).await?.out)
}

/// The fold: blocks of each lead in seq order, leads one after another.
#[derive(Debug)]
pub(crate) struct Buckets {
    range: std::ops::Range<u64>,
    bucket: u64,
    /// The lead being read and its last seq.
    at: Option<(String, u32)>,
    out: Vec<Bucket>,
}

impl Buckets {
    pub(crate) fn new(range: std::ops::Range<u64>, bucket: u64) -> Self {
        Buckets {
            range,
            bucket: bucket.max(1),
            at: None,
            out: Vec::new(),
        }
    }

    pub(crate) fn block(&mut self, b: &Stored) {
        match &mut self.at {
            // A row seen twice (the same seq) counts once.
            Some((lead, seq)) if *lead == b.lead && b.seq <= *seq => return,
            Some((lead, seq)) if *lead == b.lead => *seq = b.seq,
            _ => self.at = Some((b.lead.clone(), b.seq)),
        }
        let values = b.form().values();
        let start = b.first_sample;
        let end = start + values.len() as u64;
        let lo = self.range.start.clamp(start, end);
        let hi = self.range.end.clamp(start, end);
        let (from, size) = (self.range.start, self.bucket);
        for (k, r) in runs(lo..hi, |i| (i - from) / size) {
            let slice = &values[(r.start - start) as usize..(r.end - start) as usize];
            // The first of equal values wins, in sample order (no NaN is
            // stored: validation refuses it).
            let (min, max) = slice
                .iter()
                .skip(1)
                .fold((slice[0], slice[0]), |(lo, hi), &v| {
                    (if v < lo { v } else { lo }, if v > hi { v } else { hi })
                });
            match self.out.last_mut() {
                Some(last) if last.lead == b.lead && (last.first - from) / size == k => {
                    if min < last.min {
                        last.min = min;
                    }
                    if max > last.max {
                        last.max = max;
                    }
                }
                _ => self.out.push(Bucket {
                    lead: b.lead.clone(),
                    first: r.start,
                    min,
                    max,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blocks::stored;
    use ecg_clickhouse::blocks::Form;
    use ecg_schemas::Calibration;

    #[test]
    fn buckets_span_blocks_and_start_at_the_range() {
        let a = [1.0, -3.0, 2.0, 0.5];
        let b = [7.0, -0.0, 4.0];
        let counts = [1030, 1000];
        let c = Calibration {
            gain: 2.0,
            baseline: 1024,
        };
        let mut s = Buckets::new(1..9, 3);
        s.block(&stored("I", 0, 0, &Form::physical(&a)));
        s.block(&stored("I", 0, 0, &Form::physical(&a)));
        s.block(&stored("I", 1, 4, &Form::physical(&b)));
        s.block(&stored("I", 2, 7, &Form::adc(&counts, c)));
        s.block(&stored("II", 0, 0, &Form::physical(&b)));
        let got: Vec<(&str, u64, f64, f64)> = s
            .out
            .iter()
            .map(|b| (b.lead.as_str(), b.first, b.min, b.max))
            .collect();
        // I: 1..4 = -3, 2, 0.5; 4..7 = 7, -0, 4; 7..9 = 3, -12.
        assert_eq!(
            got,
            [
                ("I", 1, -3.0, 2.0),
                ("I", 4, -0.0, 7.0),
                ("I", 7, -12.0, 3.0),
                ("II", 1, -0.0, 4.0)
            ]
        );
    }
}
