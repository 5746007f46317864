//! The product's signal analytics: pure, no I/O, no clock, no async.
//!
//! # Zero crossings
//!
//! Convention (the product's contract): within one lead, a zero crossing is a
//! sign change between consecutive non-zero samples. Exact zeros (`0.0` and
//! `-0.0`) carry the last non-zero sign forward; leading zeros have no sign.
//! So `+,0,-` counts one crossing and `+,0,+` counts none.
//!
//! The guarantee: a signal cut into chunks in any way, each chunk summarised
//! with [`LeadSummary::of`], and the summaries folded in order with
//! [`LeadSummary::then`] gives exactly the [`LeadSummary`] of one pass over
//! the whole signal. `then` is associative and [`LeadSummary::EMPTY`] is its
//! identity, so summaries can also be combined as a tree, or in windows, and
//! still agree with one pass.
//!
//! # Analytics
//!
//! An [`Analytic`] is an incremental computation over one lead's samples in
//! order, with a state saved to compact, versioned bytes
//! ([`Analytic::save`], [`Analytic::restore`]; layout in [`state`]). Its
//! guarantee: any chunking of the lead, with the state saved and restored
//! between any chunks, gives the [`Outcome`] of one pass, bit for bit.
//! Registered analytics ([`registry`]): [`ZeroCrossings`] (the kernel above)
//! and [`BeatDetector`] (QRS detection, R peaks as sample indices).
//!
//! ## Adding an analytic
//!
//! One new file, `src/<name>.rs`, that implements [`Analytic`] (tested like
//! the others: `tests/analytics.rs` runs every analytic through random
//! chunkings), declared in this file (`pub mod <name>;`), and one line in
//! the `registry!` list at the end of `src/registry.rs`:
//!
//! ```text
//! registry! {
//!     ZeroCrossings => crate::crossings::ZeroCrossings,
//!     Beats => crate::beats::BeatDetector,
//!     Peak => crate::peak::PeakAmplitude,   // the new line
//! }
//! ```
//!
//! The registry gives it an [`AnalyticId`] variant, its place in
//! [`AnyAnalytic`] and [`AnyOutput`], and restoring its states by id. A
//! whole analytic (the largest magnitude so far, the peak-to-peak span a
//! dashboard shows):
//!
//! ```
//! use ecg_signal::{Analytic, AnalyticError, Outcome, StateError, StateReader, StateWriter};
//!
//! /// The largest magnitude of the samples pushed.
//! #[derive(Debug, Clone, Copy, PartialEq, Default)]
//! pub struct Peak(f64);
//!
//! impl Outcome for Peak {
//!     fn append(&mut self, later: Self) {
//!         self.0 = self.0.max(later.0);
//!     }
//! }
//!
//! #[derive(Debug, Clone, Default)]
//! pub struct PeakAmplitude {
//!     peak: Peak,
//! }
//!
//! impl Analytic for PeakAmplitude {
//!     const ID: u8 = 3; // never used before, never reused
//!     const NAME: &'static str = "peak_amplitude";
//!     const STATE_VERSION: u8 = 1;
//!     type Output = Peak;
//!
//!     fn new(_sample_rate_hz: f64) -> Result<Self, AnalyticError> {
//!         Ok(Self::default())
//!     }
//!
//!     fn push(&mut self, samples: &[f64], out: &mut Peak) {
//!         let chunk = Peak(samples.iter().fold(0.0, |m, x| m.max(x.abs())));
//!         self.peak.append(chunk);
//!         out.append(chunk);
//!     }
//!
//!     fn save_body(&self, w: &mut StateWriter) {
//!         w.f64(self.peak.0);
//!     }
//!
//!     fn restore_body(_version: u8, r: &mut StateReader<'_>) -> Result<Self, StateError> {
//!         Ok(PeakAmplitude { peak: Peak(r.f64("peak")?) })
//!     }
//! }
//!
//! let mut a = PeakAmplitude::new(500.0)?;
//! let mut out = Peak::default();
//! a.push(&[0.1, -0.7], &mut out);
//! let mut a = PeakAmplitude::restore(&a.save())?; // e.g. after a restart
//! a.push(&[0.3], &mut out);
//! assert_eq!(out, Peak(0.7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`sign`]: the sign of a sample, with `-0.0` as zero.
//! - [`summary`]: [`LeadSummary`], a chunk's summary, the scalar definition
//!   ([`LeadSummary::from_signs`]) and how two summaries combine.
//! - [`kernel`]: the fast summaries of `f64`, `f32` and digital `i16`/`i32`
//!   slices ([`LeadSummary::of`], [`LeadSummary::of_f32`],
//!   [`LeadSummary::of_digital_i16`], [`LeadSummary::of_digital_i32`]), equal
//!   to the scalar definition for every input; figures in `BENCHMARKS.md`.
//! - [`analytic`]: the [`Analytic`] trait, [`Outcome`], [`Adc`].
//! - [`state`]: the saved state's layout, [`StateWriter`], [`StateReader`].
//! - [`registry`]: the registered analytics.
//! - [`crossings`]: [`ZeroCrossings`], the kernel as an analytic.
//! - [`beats`]: [`BeatDetector`], the streaming QRS detector.
//! - [`score`]: beat-by-beat comparison with reference annotations (Se, +P),
//!   as WFDB's `bxb` and ANSI/AAMI EC57 score.
//! - [`hrv`]: RR intervals, heart rate and time-domain HRV from beats.
//! - [`quality`]: a signal-quality verdict per window of a lead.

pub mod analytic;
pub mod beats;
pub mod crossings;
pub mod hrv;
pub mod kernel;
pub mod quality;
pub mod registry;
pub mod score;
pub mod sign;
pub mod state;
pub mod summary;

pub use analytic::{Adc, Analytic, AnalyticError, Outcome};
pub use beats::BeatDetector;
pub use crossings::ZeroCrossings;
pub use registry::{AnalyticId, AnyAnalytic, AnyOutput};
pub use sign::Sign;
pub use state::{StateError, StateReader, StateWriter};
pub use summary::LeadSummary;
