//! Exact zero crossings per window of samples, counted by the `signal`
//! kernel over the stored blocks (see [`crate::series`]): a crossing is a
//! sign change between consecutive non-zero samples (0.0 and -0.0 carry
//! nothing, leading zeros have no sign), counted at the sample where the new
//! sign is seen. A crossing that spans blocks counts once, in the window of
//! its second sample; the sign before the range comes from the processor's
//! running sign (`last_sign_total`) of the block before it, so the prefix is
//! never read.

use std::collections::HashMap;

use clickhouse::Client;
use ecg_clickhouse::blocks::{self, Stored};
use uuid::Uuid;

use super::blocks::scan;
use crate::series::{Running, Signs, runs};

/// Crossings of one lead in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCount {
    pub lead: String,
    pub window: u64,
    pub crossings: u64,
}

/// Crossings per lead and window of `window_samples` samples, for the
/// windows of samples `from..to` (`window = floor(index / window_samples)`),
/// windows without crossings omitted, ordered by lead then window.
pub async fn crossing_windows(
    client: &Client,
    tenant: &str,
    id: Uuid,
    window_samples: f64,
    from: u64,
    to: u64,
) -> clickhouse::error::Result<Vec<WindowCount>> {
    let seeds = blocks::lead_signs_before(client, tenant, id, from).await?;
    let cursor = blocks::overlapping(client, tenant, id, (from, to))?;
    let windows = Windows::new(window_samples, from..to, seeds.into_iter().collect());
    let windows = scan(cursor, windows, |w, b| w.block(&b)).await?;
    Ok(windows.out)
}

/// The fold: blocks of each lead in seq order, leads one after another.
#[derive(Debug)]
pub(crate) struct Windows {
    per_window: f64,
    range: std::ops::Range<u64>,
    /// Per lead, the running sign before its first block read.
    seeds: HashMap<String, i8>,
    /// The lead being read and its last seq.
    at: Option<(String, u32)>,
    running: Running,
    out: Vec<WindowCount>,
}

impl Windows {
    pub(crate) fn new(
        per_window: f64,
        range: std::ops::Range<u64>,
        seeds: HashMap<String, i8>,
    ) -> Self {
        Windows {
            per_window,
            range,
            seeds,
            at: None,
            running: Running::default(),
            out: Vec::new(),
        }
    }

    pub(crate) fn block(&mut self, b: &Stored) {
        match &mut self.at {
            // A row seen twice (the same seq) counts once.
            Some((lead, seq)) if *lead == b.lead => {
                if b.seq <= *seq {
                    return;
                }
                *seq = b.seq;
            }
            _ => {
                let seed = self.seeds.get(&b.lead).copied().unwrap_or(0);
                self.running = Running::seeded(seed);
                self.at = Some((b.lead.clone(), b.seq));
            }
        }
        let form = b.form();
        let signs = Signs::of(&form);
        let start = b.first_sample;
        let end = start + signs.len() as u64;
        let lo = self.range.start.clamp(start, end);
        let hi = self.range.end.clamp(start, end);
        let local = |i: u64| (i - start) as usize;
        // Samples before the range only carry their sign.
        if lo > start {
            self.running.cross(signs.summary(0..local(lo)));
        }
        let w = self.per_window;
        // As SQL's toUInt64(floor(index / w)) and the route's window_of.
        for (window, r) in runs(lo..hi, |i| (i as f64 / w).floor() as u64) {
            let crossings = self
                .running
                .cross(signs.summary(local(r.start)..local(r.end)));
            if crossings == 0 {
                continue;
            }
            match self.out.last_mut() {
                Some(last) if last.window == window && last.lead == b.lead => {
                    last.crossings += crossings;
                }
                _ => self.out.push(WindowCount {
                    lead: b.lead.clone(),
                    window,
                    crossings,
                }),
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn into_counts(self) -> Vec<WindowCount> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blocks::stored;
    use ecg_clickhouse::blocks::Form;
    use ecg_signal::LeadSummary;
    use proptest::prelude::*;

    /// `values` stored as blocks cut at `cuts`, of lead "I".
    fn blocks(values: &[f64], cuts: &[usize]) -> Vec<Stored> {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(values.len())).collect();
        bounds.extend([0, values.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        bounds
            .windows(2)
            .enumerate()
            .map(|(seq, w)| {
                stored(
                    "I",
                    seq as u32,
                    w[0] as u64,
                    &Form::physical(&values[w[0]..w[1]]),
                )
            })
            .collect()
    }

    /// Per window, by the definition, over the whole signal at once.
    fn reference(values: &[f64], per_window: f64, range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
        let mut out = HashMap::new();
        let mut last = 0.0f64;
        for (i, &v) in values.iter().enumerate() {
            if v == 0.0 {
                continue;
            }
            let i = i as u64;
            if last != 0.0 && (last > 0.0) != (v > 0.0) && range.contains(&i) {
                *out.entry((i as f64 / per_window).floor() as u64)
                    .or_insert(0) += 1;
            }
            last = v;
        }
        let mut out: Vec<(u64, u64)> = out.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// The fold as `crossing_windows` runs it: seeded by the running sign of
    /// the blocks wholly before the range, fed the blocks that overlap it.
    fn fold(blocks: &[Stored], per_window: f64, range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
        let mut seed = LeadSummary::EMPTY;
        let mut w = None;
        for b in blocks {
            let end = b.first_sample + b.form().len() as u64;
            if end <= range.start {
                seed = seed.then(LeadSummary::of(&b.form().values()));
            } else if b.first_sample < range.end {
                let seeds = HashMap::from([("I".to_string(), seed.last.as_i8())]);
                w.get_or_insert_with(|| Windows::new(per_window, range.clone(), seeds))
                    .block(b);
            }
        }
        w.map(|w| {
            w.into_counts()
                .iter()
                .map(|c| (c.window, c.crossings))
                .collect()
        })
        .unwrap_or_default()
    }

    proptest! {
        #[test]
        fn any_cut_into_blocks_and_any_range_gives_one_pass_per_window(
            values in prop::collection::vec(
                prop::sample::select(vec![0.0, -0.0, 1.5, -2.25, 0.1 + 0.2, -5e-324]),
                0..400,
            ),
            cuts in prop::collection::vec(0usize..400, 0..8),
            per_window in prop::sample::select(vec![1.0, 7.0, 10.0, 12.5, 1000.0]),
            a in 0u64..420,
            b in 0u64..420,
        ) {
            let range = a.min(b)..a.max(b);
            let blocks = blocks(&values, &cuts);
            prop_assert_eq!(fold(&blocks, per_window, range.clone()), reference(&values, per_window, range));
        }
    }
}
