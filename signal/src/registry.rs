//! The one place analytics are registered: [`AnalyticId`], [`AnyAnalytic`]
//! and [`AnyOutput`] are generated from the list at the bottom of this file.
//!
//! A processor that runs analytics chosen by configuration, or restores a
//! state without knowing beforehand whose it is, uses these: the id byte at
//! the start of a saved state picks the analytic ([`AnyAnalytic::restore`]).
//! Dispatch is a `match`, not a trait object, so a push costs the same as
//! calling the analytic itself.

use crate::analytic::{Adc, Analytic, AnalyticError};
use crate::state::StateError;

macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $ty:ty,)+) => {
        /// Every registered analytic. The discriminant is the analytic's
        /// [`Analytic::ID`], so two analytics with one id do not compile.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum AnalyticId {
            $($(#[$doc])* $variant = <$ty as Analytic>::ID,)+
        }

        impl AnalyticId {
            /// Every analytic, in registration order.
            pub const ALL: &[AnalyticId] = &[$(AnalyticId::$variant,)+];

            /// The analytic's stable name ([`Analytic::NAME`]).
            pub fn name(self) -> &'static str {
                match self {
                    $(AnalyticId::$variant => <$ty as Analytic>::NAME,)+
                }
            }

            /// The analytic named `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|id| id.name() == name)
            }

            /// The analytic whose [`Analytic::ID`] is `id`.
            pub fn from_u8(id: u8) -> Option<Self> {
                Self::ALL.iter().copied().find(|a| *a as u8 == id)
            }
        }

        /// One analytic of any registered kind.
        // Held in place, one per lead and analytic: boxing the larger
        // variants would add an indirection to every push and save nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum AnyAnalytic {
            $($variant($ty),)+
        }

        /// The outcome of any registered analytic.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyOutput {
            $($variant(<$ty as Analytic>::Output),)+
        }

        impl AnyAnalytic {
            /// A fresh analytic `id` for a lead sampled at `sample_rate_hz`.
            pub fn new(id: AnalyticId, sample_rate_hz: f64) -> Result<Self, AnalyticError> {
                Ok(match id {
                    $(AnalyticId::$variant => AnyAnalytic::$variant(<$ty>::new(sample_rate_hz)?),)+
                })
            }

            pub fn id(&self) -> AnalyticId {
                match self {
                    $(AnyAnalytic::$variant(_) => AnalyticId::$variant,)+
                }
            }

            /// [`Analytic::push`]: the outcome of `samples`.
            pub fn push(&mut self, samples: &[f64]) -> AnyOutput {
                match self {
                    $(AnyAnalytic::$variant(a) => {
                        let mut out = Default::default();
                        a.push(samples, &mut out);
                        AnyOutput::$variant(out)
                    })+
                }
            }

            /// [`Analytic::push_digital`]: the outcome of `counts`.
            pub fn push_digital(&mut self, counts: &[i32], adc: Adc) -> AnyOutput {
                match self {
                    $(AnyAnalytic::$variant(a) => {
                        let mut out = Default::default();
                        a.push_digital(counts, adc, &mut out);
                        AnyOutput::$variant(out)
                    })+
                }
            }

            /// [`Analytic::finish`]: what the end of the lead decides.
            pub fn finish(&mut self) -> AnyOutput {
                match self {
                    $(AnyAnalytic::$variant(a) => {
                        let mut out = Default::default();
                        a.finish(&mut out);
                        AnyOutput::$variant(out)
                    })+
                }
            }

            /// [`Analytic::save`].
            pub fn save(&self) -> Vec<u8> {
                match self {
                    $(AnyAnalytic::$variant(a) => a.save(),)+
                }
            }

            /// The analytic saved in `bytes`, whichever it is.
            pub fn restore(bytes: &[u8]) -> Result<Self, StateError> {
                let id = *bytes.first().ok_or(StateError::Header(0))?;
                match AnalyticId::from_u8(id) {
                    $(Some(AnalyticId::$variant) => Ok(AnyAnalytic::$variant(<$ty>::restore(bytes)?)),)+
                    None => Err(StateError::UnknownAnalytic(id)),
                }
            }
        }
    };
}

registry! {
    /// Zero crossings: [`crate::crossings::ZeroCrossings`].
    ZeroCrossings => crate::crossings::ZeroCrossings,
    /// QRS complexes (beats): [`crate::beats::BeatDetector`].
    Beats => crate::beats::BeatDetector,
}
