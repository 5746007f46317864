//! RR intervals, heart rate and time-domain heart-rate variability (SDNN,
//! RMSSD) from beat sample indices.
//!
//! HRV is defined on normal-to-normal (NN) intervals: an interval next to
//! an ectopic beat, a missed beat or a false detection is not one, and one
//! of them moves SDNN and RMSSD more than minutes of real variability.
//! Without beat labels, intervals are excluded by their length (a
//! documented, deterministic rule, in the spirit of the usual 20 % filter):
//! an interval is kept when
//! - it lies between 0.3 s and 2.0 s (200 and 30 beats per minute), and
//! - it differs by at most 20 % from the median of the in-range intervals
//!   among the 11 centred on it (fewer at the ends), so an early beat's
//!   short interval and the compensatory long one after it both go.
//!
//! RMSSD uses only successive differences between two consecutive kept
//! intervals. SDNN is the sample standard deviation (divisor N - 1).

/// Physiological range of an RR interval, seconds.
const RR_MIN_S: f64 = 0.3;
const RR_MAX_S: f64 = 2.0;
/// Largest relative departure from the local median.
const MAX_DEPARTURE: f64 = 0.2;
/// Intervals each side in the local median.
const HALF_WINDOW: usize = 5;

/// Intervals between consecutive beats, in seconds.
pub fn rr_intervals(beats: &[u64], rate_hz: f64) -> Vec<f64> {
    beats
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / rate_hz)
        .collect()
}

/// Which of `rr` (seconds) are normal-to-normal, by the rule above.
pub fn normal_intervals(rr: &[f64]) -> Vec<bool> {
    let in_range = |v: f64| (RR_MIN_S..=RR_MAX_S).contains(&v);
    (0..rr.len())
        .map(|i| {
            if !in_range(rr[i]) {
                return false;
            }
            let lo = i.saturating_sub(HALF_WINDOW);
            let hi = (i + HALF_WINDOW + 1).min(rr.len());
            let mut local: Vec<f64> = rr[lo..hi]
                .iter()
                .copied()
                .filter(|&v| in_range(v))
                .collect();
            local.sort_unstable_by(f64::total_cmp);
            let m = local.len();
            let median = if m % 2 == 1 {
                local[m / 2]
            } else {
                (local[m / 2 - 1] + local[m / 2]) / 2.0
            };
            (rr[i] - median).abs() <= MAX_DEPARTURE * median
        })
        .collect()
}

/// Time-domain HRV of a run of beats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hrv {
    /// RR intervals in the beats.
    pub intervals: usize,
    /// Of those, the normal-to-normal ones used.
    pub normal: usize,
    /// Mean NN interval, seconds.
    pub mean_nn_s: f64,
    /// Mean heart rate, beats per minute: 60 / mean NN.
    pub mean_hr_bpm: f64,
    /// Standard deviation of NN intervals, milliseconds.
    pub sdnn_ms: f64,
    /// Root mean square of successive NN differences, milliseconds; `None`
    /// without two consecutive NN intervals.
    pub rmssd_ms: Option<f64>,
}

/// HRV of `beats` (sample indices at `rate_hz`); `None` with fewer than two
/// normal intervals.
pub fn hrv(beats: &[u64], rate_hz: f64) -> Option<Hrv> {
    let rr = rr_intervals(beats, rate_hz);
    let keep = normal_intervals(&rr);
    let nn: Vec<f64> = rr
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| *v)
        .collect();
    if nn.len() < 2 {
        return None;
    }
    let n = nn.len() as f64;
    let mean = nn.iter().sum::<f64>() / n;
    let var = nn.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let successive: Vec<f64> = rr
        .windows(2)
        .zip(keep.windows(2))
        .filter(|(_, k)| k[0] && k[1])
        .map(|(w, _)| w[1] - w[0])
        .collect();
    let rmssd = (!successive.is_empty()).then(|| {
        let ms = successive.iter().map(|d| d * d).sum::<f64>() / successive.len() as f64;
        ms.sqrt() * 1000.0
    });
    Some(Hrv {
        intervals: rr.len(),
        normal: nn.len(),
        mean_nn_s: mean,
        mean_hr_bpm: 60.0 / mean,
        sdnn_ms: var.sqrt() * 1000.0,
        rmssd_ms: rmssd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_steady_rhythm_has_no_variability() {
        let beats: Vec<u64> = (0..20).map(|i| i * 250).collect();
        let h = hrv(&beats, 250.0).unwrap();
        assert_eq!((h.intervals, h.normal), (19, 19));
        assert!(close(h.mean_hr_bpm, 60.0));
        assert!(close(h.sdnn_ms, 0.0));
        assert_eq!(h.rmssd_ms, Some(0.0));
    }

    #[test]
    fn alternating_intervals_give_the_textbook_figures() {
        // 0.8 s and 0.9 s alternating: SD over n - 1, successive diffs 100 ms.
        let mut beats = vec![0u64];
        for i in 0..10 {
            let rr = if i % 2 == 0 { 800 } else { 900 };
            beats.push(beats.last().unwrap() + rr);
        }
        let h = hrv(&beats, 1000.0).unwrap();
        assert!(close(h.mean_nn_s, 0.85));
        assert!(close(
            h.sdnn_ms,
            (0.05f64.powi(2) * 10.0 / 9.0).sqrt() * 1000.0
        ));
        assert!(close(h.rmssd_ms.unwrap(), 100.0));
    }

    #[test]
    fn an_ectopic_beat_and_its_pause_are_left_out() {
        // 1 s rhythm; beat 10 comes 0.6 s after beat 9, the next 1.4 s later.
        let mut beats: Vec<u64> = (0..20).map(|i| i * 1000).collect();
        beats[10] -= 400;
        let rr = rr_intervals(&beats, 1000.0);
        let keep = normal_intervals(&rr);
        assert!(!keep[9] && !keep[10], "0.6 s and 1.4 s are not NN");
        assert_eq!(keep.iter().filter(|k| !**k).count(), 2);
        let h = hrv(&beats, 1000.0).unwrap();
        assert!(close(h.sdnn_ms, 0.0));
        assert_eq!(h.rmssd_ms, Some(0.0));
    }

    #[test]
    fn out_of_range_intervals_are_left_out() {
        let keep = normal_intervals(&[1.0, 0.1, 1.0, 3.0, 1.0]);
        assert_eq!(keep, [true, false, true, false, true]);
        assert_eq!(hrv(&[0, 100], 1000.0), None);
    }
}
