//! Heart rate, HRV and signal quality from a lead's beats and its block
//! figures: the window verdicts (`ecg_signal::quality`), the heart rate of
//! the good windows only, and the ECG's best-quality lead. Pure: the
//! handlers read the figures from ClickHouse and hand them here.

use std::collections::BTreeMap;

use ecg_clickhouse::beats::LeadBeats;
use ecg_clickhouse::blocks::WindowStats;
use ecg_schemas::Units;
use ecg_schemas::api::{HeartRate, LeadInsight, LeadQuality, SignalQuality};
use ecg_signal::{hrv, quality};

/// One lead in one window: its verdict and the beats whose peak lies in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub quality: SignalQuality,
    pub beats: Vec<u64>,
}

/// The verdict on every window that has figures, by (lead, window); windows
/// hold `per_window` samples each.
pub fn judge(
    stats: Vec<WindowStats>,
    beats: &[LeadBeats],
    per_window: f64,
    rate_hz: f64,
    units: Units,
) -> BTreeMap<(String, u64), Judged> {
    let per_mv = match units {
        Units::Microvolts => 1000.0,
        Units::Millivolts => 1.0,
    };
    let window_of = |index: u64| (index as f64 / per_window).floor() as u64;
    stats
        .into_iter()
        .map(|s| {
            let in_window: Vec<u64> = beats
                .iter()
                .find(|b| b.lead == s.lead)
                .map(|b| {
                    b.beats
                        .iter()
                        .copied()
                        .filter(|&i| window_of(i) == s.window)
                        .collect()
                })
                .unwrap_or_default();
            let figures = quality::WindowStats {
                samples: s.n,
                min: s.low,
                max: s.high,
                at_extremes: s.clipped,
            };
            let quality = match quality::verdict(&figures, &in_window, rate_hz, per_mv) {
                quality::Quality::Good => SignalQuality::Good,
                quality::Quality::Flat => SignalQuality::Flat,
                quality::Quality::Saturated => SignalQuality::Saturated,
                quality::Quality::Noisy => SignalQuality::Noisy,
            };
            let judged = Judged {
                quality,
                beats: in_window,
            };
            ((s.lead, s.window), judged)
        })
        .collect()
}

/// Heart rate and HRV of a run of beats (`ecg_signal::hrv`).
pub fn heart_rate(beats: &[u64], rate_hz: f64) -> Option<HeartRate> {
    let h = hrv::hrv(beats, rate_hz)?;
    Some(HeartRate {
        rr_intervals: h.intervals as u64,
        normal_intervals: h.normal as u64,
        heart_rate_bpm: h.mean_hr_bpm,
        sdnn_ms: h.sdnn_ms,
        rmssd_ms: h.rmssd_ms,
    })
}

/// Sets each lead's beats, quality counts and heart rate: the heart rate of
/// its beats in good windows only (an RR interval across a window left out
/// is too long to count as normal, so it drops out).
pub fn fill_leads(
    leads: &mut BTreeMap<String, LeadInsight>,
    beats: &[LeadBeats],
    judged: &BTreeMap<(String, u64), Judged>,
    rate_hz: f64,
) {
    for b in beats {
        if let Some(lead) = leads.get_mut(&b.lead) {
            lead.beats = b.beats.len() as u64;
        }
    }
    for ((lead, _), j) in judged {
        let Some(insight) = leads.get_mut(lead) else {
            continue;
        };
        let q = insight.quality.get_or_insert_with(LeadQuality::default);
        q.windows += 1;
        match j.quality {
            SignalQuality::Good => q.good += 1,
            SignalQuality::Flat => q.flat += 1,
            SignalQuality::Saturated => q.saturated += 1,
            SignalQuality::Noisy => q.noisy += 1,
        }
    }
    for (name, insight) in leads.iter_mut() {
        let good: Vec<u64> = judged
            .range((name.clone(), 0)..=(name.clone(), u64::MAX))
            .filter(|(_, j)| j.quality == SignalQuality::Good)
            .flat_map(|(_, j)| j.beats.iter().copied())
            .collect();
        insight.heart_rate = heart_rate(&good, rate_hz);
    }
}

/// The lead whose heart rate the ECG reports: the most good windows, then
/// the largest share of NN intervals, then the most intervals, then the
/// first declared; only leads with a heart rate.
pub fn best_lead<'a>(
    declared: &'a [String],
    leads: &BTreeMap<String, LeadInsight>,
) -> Option<&'a String> {
    let score = |l: &String| {
        let insight = leads.get(l)?;
        let h = insight.heart_rate.as_ref()?;
        let good = insight.quality.as_ref().map_or(0, |q| q.good);
        let share = h.normal_intervals as f64 / h.rr_intervals.max(1) as f64;
        Some((good, share, h.rr_intervals))
    };
    let mut best: Option<(&String, (u64, f64, u64))> = None;
    for l in declared {
        if let Some(s) = score(l) {
            let better = best.is_none_or(|(_, b)| {
                (s.0, s.1, s.2).partial_cmp(&(b.0, b.1, b.2)) == Some(std::cmp::Ordering::Greater)
            });
            if better {
                best = Some((l, s));
            }
        }
    }
    best.map(|(l, _)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(lead: &str, window: u64, low: f64, high: f64, clipped: u64) -> WindowStats {
        WindowStats {
            lead: lead.into(),
            window,
            n: 75_000,
            low,
            high,
            clipped,
        }
    }

    fn insight() -> LeadInsight {
        LeadInsight {
            samples: 0,
            zero_crossings: 0,
            zero_crossing_rate_hz: 0.0,
            beats: 0,
            heart_rate: None,
            quality: None,
        }
    }

    #[test]
    fn the_heart_rate_comes_from_good_windows_and_the_best_lead() {
        let rate = 250.0;
        // Lead A: 75 bpm in window 0 (good), 150 bpm "beats" in window 1
        // that is clipped. Lead B: 60 bpm, good in both.
        let mut a: Vec<u64> = (0..375).map(|k| k * 200).collect();
        a.extend((0..750).map(|k| 75_000 + k * 100));
        let b: Vec<u64> = (0..600).map(|k| k * 250).collect();
        let beats = vec![
            LeadBeats {
                lead: "A".into(),
                beats: a,
            },
            LeadBeats {
                lead: "B".into(),
                beats: b,
            },
        ];
        let judged = judge(
            vec![
                stats("A", 0, -0.4, 1.2, 600),
                stats("A", 1, -5.0, 5.0, 20_000),
                stats("B", 0, -0.3, 0.9, 600),
                stats("B", 1, -0.3, 0.9, 600),
            ],
            &beats,
            75_000.0,
            rate,
            Units::Millivolts,
        );
        assert_eq!(
            judged[&("A".to_string(), 1)].quality,
            SignalQuality::Saturated
        );
        let mut leads: BTreeMap<String, LeadInsight> = ["A", "B"]
            .iter()
            .map(|l| (l.to_string(), insight()))
            .collect();
        fill_leads(&mut leads, &beats, &judged, rate);
        let hr = |l: &str| leads[l].heart_rate.as_ref().map(|h| h.heart_rate_bpm);
        assert!(
            hr("A").is_some_and(|h| (h - 75.0).abs() < 1e-9),
            "{:?}",
            hr("A")
        );
        assert!(
            hr("B").is_some_and(|h| (h - 60.0).abs() < 1e-9),
            "{:?}",
            hr("B")
        );
        assert_eq!(leads["A"].beats, 1125);
        let q = leads["A"].quality.clone().unwrap_or_default();
        assert_eq!((q.windows, q.good, q.saturated), (2, 1, 1));
        let declared = vec!["A".to_string(), "B".to_string()];
        assert_eq!(best_lead(&declared, &leads).map(String::as_str), Some("B"));
    }
}
