//! [`Analytic`]: what every analytic of one lead is, and the types the
//! implementations share.
//!
//! An analytic is a pure, incremental computation over one lead's samples in
//! order. Its guarantee, which every implementation is property-tested for:
//! the samples cut into chunks in any way, pushed one chunk after the other
//! (the analytic saved to bytes and restored between any two of them or
//! not), give exactly, bit for bit, the [`Outcome`] of one push of the whole
//! lead. That is what lets a processor keep the state between chunks, lose
//! it on a crash, restore the last saved copy and replay.

use std::fmt::Debug;

use crate::state::{StateError, StateReader, StateWriter};

/// What an analytic reports about a run of samples, accumulated in order.
///
/// [`Outcome::append`] is the only way an outcome grows, so "the outcome of
/// a chunk followed by the next chunk" is always defined, and one outcome
/// accumulated over every push equals the outcome of one push.
pub trait Outcome: Default + Clone + PartialEq + Debug {
    /// Adds what `later` (the outcome of the samples right after this one's)
    /// reports, after what this one does.
    fn append(&mut self, later: Self);
}

/// Beat sample indices, in increasing order: outcomes concatenate.
impl Outcome for Vec<u64> {
    fn append(&mut self, later: Self) {
        self.extend(later);
    }
}

/// How a lead's ADC counts become millivolts: `(count - baseline) / gain`,
/// as the ecg-stream API defines digital ECGs.
///
/// The gain should be positive and finite ([`Adc::new`] checks). With
/// another, no analytic panics, but the millivolts are meaningless (zero
/// crossings, which need only the baseline, stay right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adc {
    /// The count that means 0 mV.
    pub baseline: i32,
    /// Counts per millivolt.
    pub gain: f64,
}

impl Adc {
    /// An ADC calibration, checked: the gain is a positive finite number.
    pub fn new(baseline: i32, gain: f64) -> Result<Self, AnalyticError> {
        if gain.is_finite() && gain > 0.0 {
            Ok(Adc { baseline, gain })
        } else {
            Err(AnalyticError::Gain(gain))
        }
    }

    /// The millivolts of `count`, exactly as a physical ECG derived from the
    /// counts would hold them: the difference of two `i32` is exact in `f64`,
    /// then one division.
    #[inline(always)]
    pub fn millivolts(self, count: i32) -> f64 {
        (f64::from(count) - f64::from(self.baseline)) / self.gain
    }
}

/// An analytic that cannot be set up as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyticError {
    /// The sample rate is outside what the analytic supports.
    #[error("sample rate {rate_hz} Hz: {name} supports {min_hz} to {max_hz} Hz")]
    SampleRate {
        name: &'static str,
        rate_hz: f64,
        min_hz: f64,
        max_hz: f64,
    },
    /// An ADC gain that is not a positive finite number.
    #[error("ADC gain {0} is not a positive finite number of counts per mV")]
    Gain(f64),
}

/// A pure, incremental computation over one lead's samples, with a state
/// that saves to compact, versioned bytes.
///
/// Implementations write only [`Analytic::save_body`] and
/// [`Analytic::restore_body`]; the provided [`Analytic::save`] and
/// [`Analytic::restore`] put the header (the analytic's [`Analytic::ID`] and
/// [`Analytic::STATE_VERSION`]) in front, check it on the way back, and
/// refuse trailing bytes. Restoring never panics, whatever the bytes.
pub trait Analytic: Sized + Clone + Debug {
    /// Stable identifier, stored in every saved state: never reused, never
    /// changed (the registry turns a duplicate into a compile error).
    const ID: u8;
    /// Stable name, for configuration and reports (`zero_crossings`).
    const NAME: &'static str;
    /// Version of the body's layout. A change of layout bumps it; restoring
    /// an older version either reads it or refuses it with
    /// [`StateError::Version`], never misreads it.
    const STATE_VERSION: u8;
    /// What the analytic reports about the samples pushed.
    type Output: Outcome;

    /// A fresh analytic for a lead sampled at `sample_rate_hz`.
    fn new(sample_rate_hz: f64) -> Result<Self, AnalyticError>;

    /// Takes the lead's next samples, in millivolts, and appends to `out`
    /// what they make the analytic report.
    fn push(&mut self, samples: &[f64], out: &mut Self::Output);

    /// [`Analytic::push`] for ADC counts: the same as pushing
    /// [`Adc::millivolts`] of each count. Implementations that can work on
    /// the counts directly override it, with the same result.
    fn push_digital(&mut self, counts: &[i32], adc: Adc, out: &mut Self::Output) {
        let mut mv = [0.0; 256];
        for block in counts.chunks(mv.len()) {
            for (m, &c) in mv.iter_mut().zip(block) {
                *m = adc.millivolts(c);
            }
            self.push(&mv[..block.len()], out);
        }
    }

    /// Ends the lead: appends what was still undecided and can be decided
    /// now that no sample will follow (nothing, for analytics that never
    /// wait). A lead that goes on after `finish` is not one lead any more:
    /// its outcome need not equal one pass.
    fn finish(&mut self, _out: &mut Self::Output) {}

    /// Writes the state's body (everything after the header).
    fn save_body(&self, w: &mut StateWriter);

    /// Reads a body written by [`Analytic::save_body`] of layout `version`.
    fn restore_body(version: u8, r: &mut StateReader<'_>) -> Result<Self, StateError>;

    /// The state as bytes: `[ID, STATE_VERSION, body...]`.
    fn save(&self) -> Vec<u8> {
        let mut w = StateWriter::new(Self::ID, Self::STATE_VERSION);
        self.save_body(&mut w);
        w.into_bytes()
    }

    /// The analytic saved in `bytes` by [`Analytic::save`].
    fn restore(bytes: &[u8]) -> Result<Self, StateError> {
        let (version, mut r) = StateReader::open(bytes, Self::ID, Self::NAME)?;
        if version == 0 || version > Self::STATE_VERSION {
            return Err(StateError::Version {
                name: Self::NAME,
                found: version,
                known: Self::STATE_VERSION,
            });
        }
        let analytic = Self::restore_body(version, &mut r)?;
        r.end()?;
        Ok(analytic)
    }
}
