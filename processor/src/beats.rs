//! The order-dependent analytic of a lead: beat detection
//! ([`ecg_signal::BeatDetector`]), run on the lead's samples as its chunks
//! are placed, in seq order, whatever order they arrived in.
//!
//! Unlike zero crossings, whose per-chunk summaries combine in any order,
//! the detector carries a state from one chunk to the next. That state is
//! saved with a placed block now and then (a checkpoint, see
//! [`CHECKPOINT_SECONDS`]), not with every block: it holds the last 0.5 s of
//! signal, several times what a one-second block itself takes to store. A
//! restart restores the lead's last checkpoint and replays the blocks placed
//! after it ([`LeadBeats::replay`]), at most [`CHECKPOINT_SECONDS`] of
//! signal, so the beats found after a restart are the beats of one pass.
//!
//! The beats a block stores are those decided while placing it: a beat is
//! decided up to 0.5 s after its peak, so it may lie in the block before.

use ecg_schemas::Signal;
use ecg_signal::{Adc, Analytic, AnyAnalytic, BeatDetector};

/// Signal between two checkpoints of a lead's detector, seconds: what a
/// restart replays at most. Every lead is also checkpointed in chunk 0, so a
/// lead without any checkpoint is one placed before beats existed.
pub const CHECKPOINT_SECONDS: f64 = 300.0;

/// The beats of one lead, as its chunks are placed.
#[derive(Debug, Clone)]
pub struct LeadBeats {
    /// `None` when the lead's rate is outside the detector's range.
    detector: Option<BeatDetector>,
    /// 1 + sample index of the lead's last beat; 0 if none yet.
    last_beat: u64,
}

/// What placing one block of one lead found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacedBeats {
    /// Beats decided by this block: sample indices, ascending.
    pub beats: Vec<u64>,
    /// Per beat: samples since the lead's previous beat, 0 for its first.
    pub rr: Vec<u32>,
    /// 1 + sample index of the lead's last beat through this block; 0 if
    /// none yet.
    pub last_beat: u64,
    /// The detector saved after this block, when the block is a checkpoint.
    pub checkpoint: Option<Vec<u8>>,
}

impl PartialEq for LeadBeats {
    fn eq(&self, other: &Self) -> bool {
        self.last_beat == other.last_beat
            && self.detector.as_ref().map(Analytic::save)
                == other.detector.as_ref().map(Analytic::save)
    }
}

impl LeadBeats {
    /// A lead sampled at `rate_hz`, nothing placed yet.
    pub fn new(rate_hz: f64) -> Self {
        LeadBeats {
            detector: BeatDetector::new(rate_hz).ok(),
            last_beat: 0,
        }
    }

    /// A lead whose blocks are placed up to a block that says `last_beat`:
    /// its detector from the last `checkpoint` (`analytic_states` of a
    /// block), to be brought to the last block by [`LeadBeats::replay`];
    /// without one (placed before beats existed), a fresh detector that
    /// starts at the next block.
    pub fn restored(checkpoint: Option<&[Vec<u8>]>, last_beat: u64, rate_hz: f64) -> Self {
        let saved =
            checkpoint
                .into_iter()
                .flatten()
                .find_map(|bytes| match AnyAnalytic::restore(bytes) {
                    Ok(AnyAnalytic::Beats(d)) => Some(d),
                    _ => None,
                });
        LeadBeats {
            detector: saved.or_else(|| BeatDetector::new(rate_hz).ok()),
            last_beat,
        }
    }

    /// Pushes lead `lead` of a block placed after the checkpoint, whose
    /// beats are stored already: only the detector's state moves.
    pub fn replay(&mut self, signal: &Signal, lead: usize) {
        if let Some(d) = &mut self.detector {
            push(d, signal, lead, &mut Vec::new());
        }
    }

    /// Places lead `lead` of a block whose first sample is `first_sample`:
    /// the beats it decides, and a checkpoint when the block crosses a
    /// multiple of [`CHECKPOINT_SECONDS`] of signal (or is chunk 0). On the
    /// ECG's last block (`last`), the beats still undecided are decided.
    pub fn place(
        &mut self,
        signal: &Signal,
        lead: usize,
        first_sample: u64,
        last: bool,
    ) -> PlacedBeats {
        let Some(d) = &mut self.detector else {
            return PlacedBeats {
                last_beat: self.last_beat,
                ..PlacedBeats::default()
            };
        };
        let mut beats = Vec::new();
        push(d, signal, lead, &mut beats);
        if last {
            d.finish(&mut beats);
        }
        let rr = beats
            .iter()
            .map(|&b| {
                let rr = match self.last_beat {
                    0 => 0,
                    prev => b.saturating_sub(prev - 1),
                };
                self.last_beat = b.saturating_add(1);
                u32::try_from(rr).unwrap_or(u32::MAX)
            })
            .collect();
        let every = (d.sample_rate_hz() * CHECKPOINT_SECONDS).round().max(1.0) as u64;
        let end = first_sample.saturating_add(signal.len() as u64);
        let checkpoint =
            (first_sample == 0 || first_sample / every != end / every).then(|| d.save());
        PlacedBeats {
            beats,
            rr,
            last_beat: self.last_beat,
            checkpoint,
        }
    }
}

fn push(d: &mut BeatDetector, signal: &Signal, lead: usize, out: &mut Vec<u64>) {
    match signal {
        Signal::Physical(v) => d.push(&v[lead], out),
        Signal::Digital { adc, calibration } => d.push_digital(
            &adc[lead],
            Adc {
                baseline: calibration[lead].baseline,
                gain: calibration[lead].gain,
            },
            out,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic ECG-like lead: a sharp spike every `period` samples on
    /// a small wander.
    fn lead(n: usize, period: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let k = i % period;
                let spike = match k {
                    0 => 1.5,
                    1 | 2 => -0.4,
                    _ => 0.0,
                };
                spike + 0.05 * (i as f64 * 0.01).sin()
            })
            .collect()
    }

    fn placed(beats: &mut LeadBeats, x: &[f64], cuts: &[usize]) -> Vec<PlacedBeats> {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < x.len()));
        bounds.push(x.len());
        bounds
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let signal = Signal::from_vecs(vec![x[w[0]..w[1]].to_vec()]);
                beats.place(&signal, 0, w[0] as u64, i + 2 == bounds.len())
            })
            .collect()
    }

    #[test]
    fn beats_rr_and_checkpoints_are_those_of_one_pass_and_a_restore_replays() {
        let rate = 360.0;
        let x = lead(360 * 700, 288);
        let one = placed(&mut LeadBeats::new(rate), &x, &[]);
        let all: Vec<u64> = one[0].beats.clone();
        assert!(all.len() > 800, "{} beats", all.len());
        // Chunked at one second: the same beats, RR in samples between them.
        let cuts: Vec<usize> = (1..700).map(|s| s * 360).collect();
        let mut chunked_state = LeadBeats::new(rate);
        let chunked = placed(&mut chunked_state, &x, &cuts);
        let beats: Vec<u64> = chunked.iter().flat_map(|p| p.beats.clone()).collect();
        assert_eq!(beats, all);
        let rr: Vec<u32> = chunked.iter().flat_map(|p| p.rr.clone()).collect();
        assert_eq!(rr[0], 0);
        // After the detector's learning period, one beat per spike.
        assert!(rr[10..].iter().all(|&r| r == 288), "{:?}", &rr[..12]);
        for (b, r) in beats.windows(2).zip(&rr[1..]) {
            assert_eq!(b[1] - b[0], u64::from(*r));
        }
        // Checkpoints: chunk 0, then every 300 s.
        let at: Vec<usize> = (0..chunked.len())
            .filter(|&i| chunked[i].checkpoint.is_some())
            .collect();
        assert_eq!(at, [0, 299, 599]);
        // A restart after block 450: the checkpoint of block 299, then
        // blocks 300..=450 replayed; the rest gives the same beats.
        let mut restored = LeadBeats::restored(
            Some(&[chunked[299].checkpoint.clone().unwrap()]),
            chunked[450].last_beat,
            rate,
        );
        for s in 300..=450 {
            let signal = Signal::from_vecs(vec![x[s * 360..(s + 1) * 360].to_vec()]);
            restored.replay(&signal, 0);
        }
        for s in 451..700 {
            let signal = Signal::from_vecs(vec![x[s * 360..(s + 1) * 360].to_vec()]);
            let p = restored.place(&signal, 0, (s * 360) as u64, s == 699);
            assert_eq!(p, chunked[s], "block {s}");
        }
    }

    #[test]
    fn a_rate_outside_the_detector_has_no_beats() {
        let mut b = LeadBeats::new(50.0);
        let p = b.place(&Signal::from_vecs(vec![lead(500, 25)]), 0, 0, true);
        assert_eq!(p, PlacedBeats::default());
    }
}
