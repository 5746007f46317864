//! [`ZeroCrossings`]: the zero-crossing kernel as an [`Analytic`].
//!
//! Each push reports the pushed chunk's own [`LeadSummary`]
//! ([`LeadSummary::of`], or [`LeadSummary::of_digital_i32`] on ADC counts,
//! which is exact without converting them); outcomes accumulate with
//! [`LeadSummary::then`], which counts the crossing at each seam, so the
//! accumulated outcome is the summary of one pass. The state is the running
//! total: 19 bytes after the header.

use crate::analytic::{Adc, Analytic, AnalyticError, Outcome};
use crate::state::{StateError, StateReader, StateWriter};
use crate::{LeadSummary, Sign};

impl Outcome for LeadSummary {
    fn append(&mut self, later: Self) {
        *self = self.then(later);
    }
}

/// Zero crossings of one lead: the running [`LeadSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZeroCrossings {
    total: LeadSummary,
}

impl ZeroCrossings {
    /// The summary of everything pushed so far.
    pub fn total(&self) -> LeadSummary {
        self.total
    }
}

impl Analytic for ZeroCrossings {
    const ID: u8 = 1;
    const NAME: &'static str = "zero_crossings";
    const STATE_VERSION: u8 = 1;
    type Output = LeadSummary;

    /// Any rate: crossings do not depend on it.
    fn new(_sample_rate_hz: f64) -> Result<Self, AnalyticError> {
        Ok(ZeroCrossings::default())
    }

    fn push(&mut self, samples: &[f64], out: &mut LeadSummary) {
        let chunk = LeadSummary::of(samples);
        self.total.append(chunk);
        out.append(chunk);
    }

    /// Signs the counts against the baseline: the same signs as their
    /// millivolts, since the gain is positive.
    fn push_digital(&mut self, counts: &[i32], adc: Adc, out: &mut LeadSummary) {
        let chunk = LeadSummary::of_digital_i32(counts, i64::from(adc.baseline));
        self.total.append(chunk);
        out.append(chunk);
    }

    fn save_body(&self, w: &mut StateWriter) {
        let t = self.total;
        w.u64(t.samples);
        w.u8(t.first.as_i8() as u8);
        w.u8(t.last.as_i8() as u8);
        w.u64(t.crossings);
    }

    fn restore_body(_version: u8, r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let samples = r.u64("samples")?;
        let mut sign = |field| {
            let v = r.u8(field)? as i8;
            match v {
                -1..=1 => Ok(Sign::from_i8(v)),
                _ => Err(StateError::invalid(field, format!("{v} is not -1, 0 or 1"))),
            }
        };
        let first = sign("first sign")?;
        let last = sign("last sign")?;
        let crossings = r.u64("crossings")?;
        if first.is_zero() != last.is_zero() {
            return Err(StateError::invalid(
                "last sign",
                "first and last are zero only together",
            ));
        }
        Ok(ZeroCrossings {
            total: LeadSummary {
                samples,
                first,
                last,
                crossings,
            },
        })
    }
}
