//! Beat-by-beat comparison of detected beats with reference annotations, as
//! ANSI/AAMI EC57 defines it and WFDB's `bxb` (its reference implementation)
//! computes it.
//!
//! A detected beat matches a reference beat when they are at most the match
//! window apart (EC57 and `bxb`: 150 ms). Each beat matches at most one
//! other. Walking both lists in time order: a detection too early for the
//! current reference beat is a false positive, a reference beat with no
//! detection near enough is a false negative; when both are within the
//! window they match, unless the next detection is closer to this reference
//! beat (then this detection is the false positive) or the next reference
//! beat is closer to this detection (then this reference beat is the false
//! negative), `bxb`'s tie-breaking in spirit.
//!
//! Scoring period: `bxb` starts comparing 5 minutes into the record by
//! default (its `-f` option; EC57 leaves the first 5 minutes to the
//! detector's learning). [`Scoring::bxb`] is that convention,
//! [`Scoring::whole`] scores from the first sample. Beats of both lists
//! before the start are left out.

/// Where and how closely to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// Largest distance, in samples, between matching beats (inclusive).
    pub window: u64,
    /// First sample scored.
    pub from: u64,
}

/// The EC57 match window, in seconds.
pub const MATCH_WINDOW_S: f64 = 0.150;
/// Where `bxb` starts scoring by default, in seconds.
pub const BXB_START_S: f64 = 300.0;

impl Scoring {
    /// `bxb`'s defaults at `rate_hz`: a 150 ms window, from 5 minutes on.
    pub fn bxb(rate_hz: f64) -> Self {
        Scoring {
            window: (MATCH_WINDOW_S * rate_hz).round() as u64,
            from: (BXB_START_S * rate_hz).round() as u64,
        }
    }

    /// A 150 ms window over the whole record.
    pub fn whole(rate_hz: f64) -> Self {
        Scoring {
            from: 0,
            ..Scoring::bxb(rate_hz)
        }
    }
}

/// True positives, false positives and false negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Score {
    /// Reference beats with a matching detection.
    pub tp: u64,
    /// Detections matching no reference beat.
    pub fp: u64,
    /// Reference beats no detection matches.
    pub fn_: u64,
}

impl Score {
    /// Sensitivity Se = TP / (TP + FN); `None` without reference beats.
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Positive predictivity +P = TP / (TP + FP); `None` without detections.
    pub fn positive_predictivity(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2} %", 100.0 * v));
        write!(
            f,
            "TP {} FP {} FN {}, Se {}, +P {}",
            self.tp,
            self.fp,
            self.fn_,
            pct(self.sensitivity()),
            pct(self.positive_predictivity())
        )
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Compares `detected` with `reference` (sample indices, each in increasing
/// order).
pub fn compare(reference: &[u64], detected: &[u64], scoring: Scoring) -> Score {
    let mut score = Score::default();
    walk(reference, detected, scoring, |m| match m {
        Step::Match(..) => score.tp += 1,
        Step::Extra(_) => score.fp += 1,
        Step::Missed(_) => score.fn_ += 1,
    });
    score
}

/// Every decision of [`compare`]: for the timing of detections (their
/// offset from the reference) and for finding what was missed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detail {
    /// Matched `(reference, detected)` pairs, in order.
    pub matched: Vec<(u64, u64)>,
    /// Detections matching no reference beat (false positives).
    pub extra: Vec<u64>,
    /// Reference beats no detection matches (false negatives).
    pub missed: Vec<u64>,
}

impl Detail {
    pub fn score(&self) -> Score {
        Score {
            tp: self.matched.len() as u64,
            fp: self.extra.len() as u64,
            fn_: self.missed.len() as u64,
        }
    }
}

/// [`compare`], with the beats behind each count.
pub fn detail(reference: &[u64], detected: &[u64], scoring: Scoring) -> Detail {
    let mut d = Detail::default();
    walk(reference, detected, scoring, |m| match m {
        Step::Match(r, t) => d.matched.push((r, t)),
        Step::Extra(t) => d.extra.push(t),
        Step::Missed(r) => d.missed.push(r),
    });
    d
}

enum Step {
    Match(u64, u64),
    Extra(u64),
    Missed(u64),
}

fn walk(reference: &[u64], detected: &[u64], s: Scoring, mut on: impl FnMut(Step)) {
    let start = |v: &[u64]| v.partition_point(|&x| x < s.from);
    let refs = &reference[start(reference)..];
    let dets = &detected[start(detected)..];
    let dist = |a: u64, b: u64| a.abs_diff(b);
    let (mut i, mut j) = (0, 0);
    while i < refs.len() && j < dets.len() {
        let (r, d) = (refs[i], dets[j]);
        if d.saturating_add(s.window) < r {
            on(Step::Extra(d));
            j += 1;
        } else if d > r.saturating_add(s.window) {
            on(Step::Missed(r));
            i += 1;
        } else if dets
            .get(j + 1)
            .is_some_and(|&next| dist(next, r) < dist(d, r))
        {
            on(Step::Extra(d));
            j += 1;
        } else if refs
            .get(i + 1)
            .is_some_and(|&next| dist(d, next) < dist(d, r))
        {
            on(Step::Missed(r));
            i += 1;
        } else {
            on(Step::Match(r, d));
            i += 1;
            j += 1;
        }
    }
    refs[i..].iter().for_each(|&r| on(Step::Missed(r)));
    dets[j..].iter().for_each(|&d| on(Step::Extra(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Scoring = Scoring {
        window: 10,
        from: 0,
    };

    #[test]
    fn exact_and_near_detections_match() {
        let s = compare(&[100, 200, 300], &[100, 209, 291], W);
        assert_eq!(
            s,
            Score {
                tp: 3,
                fp: 0,
                fn_: 0
            }
        );
        assert_eq!(s.sensitivity(), Some(1.0));
    }

    #[test]
    fn the_window_is_inclusive() {
        assert_eq!(compare(&[100], &[110], W).tp, 1);
        assert_eq!(
            compare(&[100], &[111], W),
            Score {
                tp: 0,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(compare(&[100], &[90], W).tp, 1);
    }

    #[test]
    fn an_extra_and_a_missed_beat_are_counted() {
        let s = compare(&[100, 200, 300, 400], &[100, 150, 200, 400], W);
        assert_eq!(
            s,
            Score {
                tp: 3,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(s.positive_predictivity(), Some(0.75));
    }

    #[test]
    fn two_detections_near_one_beat_match_the_closer() {
        let d = detail(&[100], &[92, 99], W);
        assert_eq!(d.matched, [(100, 99)]);
        assert_eq!(d.extra, [92]);
        assert_eq!(
            compare(&[100], &[92, 99], W),
            Score {
                tp: 1,
                fp: 1,
                fn_: 0
            }
        );
    }

    #[test]
    fn a_detection_between_two_beats_goes_to_the_closer() {
        let s = Scoring {
            window: 60,
            from: 0,
        };
        assert_eq!(detail(&[100, 200], &[160], s).matched, [(200, 160)]);
        assert_eq!(detail(&[100, 200], &[140], s).matched, [(100, 140)]);
    }

    #[test]
    fn beats_before_the_start_are_not_scored() {
        let s = Scoring {
            window: 10,
            from: 150,
        };
        assert_eq!(
            compare(&[100, 200], &[50, 200], s),
            Score {
                tp: 1,
                fp: 0,
                fn_: 0
            }
        );
        let bxb = Scoring::bxb(360.0);
        assert_eq!((bxb.window, bxb.from), (54, 108_000));
    }

    #[test]
    fn nothing_to_score_has_no_ratio() {
        let s = compare(&[], &[], W);
        assert_eq!(s.sensitivity(), None);
        assert_eq!(s.to_string(), "TP 0 FP 0 FN 0, Se -, +P -");
    }
}
