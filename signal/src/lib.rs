//! The zero-crossing kernel: pure, no I/O, no clock, no async.
//!
//! Convention (the product's contract): within one lead, a zero crossing is a
//! sign change between consecutive non-zero samples. Exact zeros (`0.0` and
//! `-0.0`) carry the last non-zero sign forward; leading zeros have no sign.
//! So `+,0,-` counts one crossing and `+,0,+` counts none.
//!
//! The guarantee this crate gives: a signal cut into chunks in any way, each
//! chunk summarised with [`LeadSummary::of`], and the summaries folded in
//! order with [`LeadSummary::then`] gives exactly the [`LeadSummary`] of one
//! pass over the whole signal. `then` is associative and [`LeadSummary::EMPTY`]
//! is its identity, so summaries can also be combined as a tree, or in
//! windows, and still agree with one pass.
//!
//! Modules:
//! - [`sign`]: the sign of a sample, with `-0.0` as zero.
//! - [`summary`]: [`LeadSummary`], a chunk's summary, the scalar definition
//!   ([`LeadSummary::from_signs`]) and how two summaries combine.
//! - [`kernel`]: the fast summaries of `f64`, `f32` and digital `i16`/`i32`
//!   slices ([`LeadSummary::of`], [`LeadSummary::of_f32`],
//!   [`LeadSummary::of_digital_i16`], [`LeadSummary::of_digital_i32`]), equal
//!   to the scalar definition for every input; figures in `BENCHMARKS.md`.

pub mod kernel;
pub mod sign;
pub mod summary;

pub use sign::Sign;
pub use summary::LeadSummary;
