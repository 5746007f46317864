//! [`Signal`]: the samples of a chunk, physical or digital, and the unit
//! model.
//!
//! - Physical samples are floats in the ECG's `units` (`mV` or `uV`), kept
//!   exactly as sent.
//! - Digital samples are integer ADC counts with a per-lead [`Calibration`],
//!   as in WFDB: `physical = (adc - baseline) / gain`. They are kept exactly as
//!   sent (the counts, the gain, the baseline) and the physical value is
//!   derived. Zero crossings of a digital lead are computed from the exact
//!   integer `adc - baseline`, so no rounding can create or hide a crossing.
//!
//! Each lead is an Arrow [`ScalarBuffer`]: a reference-counted slice that
//! can point into an Arrow IPC request body or Kafka message, so samples go
//! from the body to the Kafka encoder, and from a decoded message to the
//! processor, without being copied. A `Vec` converts into one for free.

use std::borrow::Cow;
use std::collections::BTreeMap;

use arrow_buffer::ScalarBuffer;
use serde::{Deserialize, Serialize};

/// Samples of one chunk or a whole signal as a JSON body has them: lead
/// name to its samples.
pub type Samples = BTreeMap<String, Vec<f64>>;

/// Decoded but not yet checked samples of a chunk body, by lead name: what
/// every body format (JSON, CSV, Arrow) yields for `Limits::take_signal`.
pub type LeadColumns = BTreeMap<String, ScalarBuffer<f64>>;

/// Integer samples of an Arrow chunk body, by lead name: see [`Columns`].
pub type CountColumns = BTreeMap<String, ScalarBuffer<i32>>;

/// A decoded chunk body. Integer columns stay integers, so that the ADC
/// counts of a digital ECG go to Kafka as they came, without a round trip
/// through `f64` (and, for one batch of `Int32` columns, without a copy).
#[derive(Debug, Clone, PartialEq)]
pub enum Columns {
    /// Samples as numbers: JSON, CSV, and Arrow bodies with a float column.
    Values(LeadColumns),
    /// Every column an integer type that fits in `i32`.
    Counts(CountColumns),
}

impl Columns {
    /// The samples as `f64` (integers convert exactly).
    pub fn into_values(self) -> LeadColumns {
        match self {
            Columns::Values(values) => values,
            Columns::Counts(counts) => counts
                .into_iter()
                .map(|(lead, c)| (lead, c.iter().map(|&v| f64::from(v)).collect()))
                .collect(),
        }
    }
}

/// The JSON body's samples as lead columns; moves the vectors, copies no
/// sample.
pub fn lead_columns(samples: Samples) -> LeadColumns {
    samples
        .into_iter()
        .map(|(lead, values)| (lead, ScalarBuffer::from(values)))
        .collect()
}

/// How one lead's ADC counts map to physical units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// ADC counts per physical unit (e.g. 200 counts per mV); positive.
    pub gain: f64,
    /// The ADC count of 0 physical units.
    pub baseline: i32,
}

impl Calibration {
    /// The physical value of `adc` counts. Exact in sign: `gain > 0`, and a
    /// non-zero integer over a gain of at most 1e9 cannot underflow to 0.
    pub fn physical(&self, adc: i32) -> f64 {
        (i64::from(adc) - i64::from(self.baseline)) as f64 / self.gain
    }
}

/// The samples of one chunk: one buffer per lead, in lead order, all the
/// same length.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Floats in the ECG's units.
    Physical(Vec<ScalarBuffer<f64>>),
    /// ADC counts, with one calibration per lead.
    Digital {
        adc: Vec<ScalarBuffer<i32>>,
        calibration: Vec<Calibration>,
    },
}

impl Signal {
    /// Physical samples from one vector per lead (no copy).
    pub fn from_vecs(leads: Vec<Vec<f64>>) -> Signal {
        Signal::Physical(leads.into_iter().map(ScalarBuffer::from).collect())
    }

    /// Samples per lead.
    pub fn len(&self) -> usize {
        match self {
            Signal::Physical(v) => v.first().map_or(0, |l| l.len()),
            Signal::Digital { adc, .. } => adc.first().map_or(0, |l| l.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of leads.
    pub fn leads(&self) -> usize {
        match self {
            Signal::Physical(v) => v.len(),
            Signal::Digital { adc, .. } => adc.len(),
        }
    }

    /// Samples of one lead (by index) per lead, for length checks.
    pub fn lead_len(&self, lead: usize) -> usize {
        match self {
            Signal::Physical(v) => v[lead].len(),
            Signal::Digital { adc, .. } => adc[lead].len(),
        }
    }

    /// Lead `lead` in physical units: borrowed when physical, derived from
    /// the counts when digital.
    pub fn physical(&self, lead: usize) -> Cow<'_, [f64]> {
        match self {
            Signal::Physical(v) => Cow::Borrowed(&v[lead][..]),
            Signal::Digital { adc, calibration } => {
                let c = calibration[lead];
                Cow::Owned(adc[lead].iter().map(|&a| c.physical(a)).collect())
            }
        }
    }

    /// Cuts the signal into pieces of at most `samples` samples per lead;
    /// the pieces share the samples' memory.
    pub fn split(&self, samples: usize) -> Vec<Signal> {
        let step = samples.max(1);
        let len = self.len();
        (0..len)
            .step_by(step)
            .map(|start| {
                let end = (start + step).min(len);
                match self {
                    Signal::Physical(v) => {
                        Signal::Physical(v.iter().map(|l| l.slice(start, end - start)).collect())
                    }
                    Signal::Digital { adc, calibration } => Signal::Digital {
                        adc: adc.iter().map(|l| l.slice(start, end - start)).collect(),
                        calibration: calibration.clone(),
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_value_follows_wfdb() {
        let c = Calibration {
            gain: 200.0,
            baseline: 1024,
        };
        assert_eq!(c.physical(1224), 1.0);
        assert_eq!(c.physical(1024), 0.0);
        assert!(c.physical(1023) < 0.0);
        let extreme = Calibration {
            gain: 1e9,
            baseline: i32::MIN,
        };
        assert!(extreme.physical(i32::MIN + 1) > 0.0);
    }

    #[test]
    fn split_keeps_digital_counts_and_calibration() {
        let cal = vec![Calibration {
            gain: 1.0,
            baseline: 0,
        }];
        let s = Signal::Digital {
            adc: vec![vec![1, 2, 3, 4, 5].into()],
            calibration: cal.clone(),
        };
        let parts = s.split(2);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[2],
            Signal::Digital {
                adc: vec![vec![5].into()],
                calibration: cal
            }
        );
    }
}
