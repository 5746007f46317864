//! The detector's saved state (layout version 1): every field that is not
//! derived from the sample rate, in this order. `f64` fields are bit
//! patterns; `u64` fields little-endian.
//!
//! | field | bytes |
//! |---|---|
//! | sample rate (Hz) | 8 |
//! | samples seen `n` | 8 |
//! | band-pass section states | 3 × 16 |
//! | ring, oldest first: unfiltered, band-passed | ring × 16 |
//! | integrated signal | 8 |
//! | tracker: rising, top, top at, low | 25 |
//! | levels: QRS, noise, RR (8 values + index each), RR measured | 196 |
//! | last beat: present, peak at, R peak, slope | 25 |
//! | candidate: present, at, height, R, slope | 1 or 33 |
//! | learning: present, end, sum, count, peaks | 1 or 18 + 32 each |
//! | next decay | 8 |
//!
//! The ring is written oldest first so the layout does not depend on where
//! the newest sample happened to be; `pos` and the window's phase follow
//! from `n`. Restoring checks what the detector relies on to stay in
//! bounds (positions not after `n`, a plausible `n`, finite values), so a
//! forged state is refused rather than allowed to panic later.

use super::decide::{LEARN_CAPACITY, Learning, Peak};
use super::levels::Levels;
use super::{BeatDetector, Params, Tracker};
use crate::state::{StateError, StateReader, StateWriter};

/// More samples than any lead holds (a century at 4 kHz is 2^43): keeps
/// every position sum far from overflowing.
const MAX_SAMPLES: u64 = 1 << 56;

fn write_peak(w: &mut StateWriter, p: &Peak) {
    w.u64(p.at);
    w.f64(p.height);
    w.u64(p.r);
    w.f64(p.slope);
}

fn read_peak(r: &mut StateReader<'_>, n: u64) -> Result<Peak, StateError> {
    let peak = Peak {
        at: position(r, "peak at", n)?,
        height: r.finite("peak height")?,
        r: position(r, "peak R", n)?,
        slope: r.finite("peak slope")?,
    };
    Ok(peak)
}

/// A sample position, which must be before `n` (or 0 when nothing was seen).
fn position(r: &mut StateReader<'_>, field: &'static str, n: u64) -> Result<u64, StateError> {
    let v = r.u64(field)?;
    if v >= n.max(1) {
        return Err(StateError::invalid(field, format!("{v} is not before {n}")));
    }
    Ok(v)
}

impl BeatDetector {
    pub(super) fn save_fields(&self, w: &mut StateWriter) {
        w.f64(self.p.rate_hz);
        w.u64(self.n);
        for s in &self.sections {
            w.f64(s[0]);
            w.f64(s[1]);
        }
        for k in (0..self.p.ring).rev() {
            let [raw, bp] = self.ring[self.back(k)];
            w.f64(raw);
            w.f64(bp);
        }
        w.f64(self.mwi);
        let t = &self.tracker;
        w.bool(t.rising);
        w.f64(t.top);
        w.u64(t.top_at);
        w.f64(t.low);
        self.levels.save(w);
        w.bool(self.last.is_some());
        let (at, r) = self.last.unwrap_or((0, 0));
        w.u64(at);
        w.u64(r);
        w.f64(self.last_slope);
        w.bool(self.candidate.is_some());
        if let Some(c) = &self.candidate {
            write_peak(w, c);
        }
        w.bool(self.learning.is_some());
        if let Some(l) = &self.learning {
            w.u64(l.end);
            w.f64(l.mwi_sum);
            w.u8(l.peaks.len() as u8);
            for p in &l.peaks {
                write_peak(w, p);
            }
        }
        w.u64(self.next_decay);
    }

    pub(super) fn restore_fields(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        let rate = r.f64("sample rate")?;
        let p = Params::new(rate).map_err(|e| StateError::invalid("sample rate", e.to_string()))?;
        let n = r.u64("samples")?;
        if n > MAX_SAMPLES {
            return Err(StateError::invalid("samples", format!("{n} is too many")));
        }
        let mut sections = [[0.0; 2]; super::SECTIONS];
        for s in &mut sections {
            *s = [r.finite("filter state")?, r.finite("filter state")?];
        }
        let mut ring = Vec::with_capacity(p.ring);
        for _ in 0..p.ring {
            ring.push([r.finite("ring")?, r.finite("ring")?]);
        }
        let mwi = r.finite("integrated signal")?;
        let tracker = Tracker {
            rising: r.bool("tracker rising")?,
            top: r.finite("tracker top")?,
            top_at: position(r, "tracker top at", n)?,
            low: r.finite("tracker low")?,
        };
        let levels = Levels::restore(r)?;
        let has_last = r.bool("last beat")?;
        let last_at = r.u64("last beat at")?;
        let last_r = r.u64("last beat R")?;
        let last_slope = r.finite("last beat slope")?;
        let last = if has_last {
            if last_at >= n || last_r >= n {
                return Err(StateError::invalid("last beat", "after the samples seen"));
            }
            Some((last_at, last_r))
        } else {
            None
        };
        let candidate = if r.bool("candidate")? {
            Some(read_peak(r, n)?)
        } else {
            None
        };
        let learning = if r.bool("learning")? {
            let end = r.u64("learning end")?;
            if end > n.saturating_add(p.learn) {
                return Err(StateError::invalid("learning end", "beyond one period"));
            }
            let mwi_sum = r.finite("learning sum")?;
            let count = usize::from(r.u8("learning peaks")?);
            if count > LEARN_CAPACITY {
                return Err(StateError::invalid("learning peaks", format!("{count}")));
            }
            let mut peaks = Vec::with_capacity(LEARN_CAPACITY);
            for _ in 0..count {
                peaks.push(read_peak(r, n)?);
            }
            Some(Learning {
                end,
                mwi_sum,
                peaks,
            })
        } else {
            None
        };
        let next_decay = r.u64("next decay")?;
        let ring_len = p.ring;
        let phase = (n % p.window as u64) as usize;
        let mut d = BeatDetector {
            n,
            sections,
            // Written oldest first: the newest is the last entry.
            ring,
            pos: ring_len - 1,
            mwi,
            phase,
            tracker,
            levels,
            last,
            last_slope,
            candidate,
            learning,
            next_decay,
            next_event: 0,
            p,
        };
        // Put the newest where `step` expects it (sample n - 1 at n - 1
        // modulo the ring length), so a restored detector is
        // indistinguishable from the one saved.
        if n > 0 {
            let pos = ((n - 1) % ring_len as u64) as usize;
            d.ring.rotate_right(pos + 1);
            d.pos = pos;
        }
        d.next_event = d.next_event();
        Ok(d)
    }
}
