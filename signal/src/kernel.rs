//! The fast path: [`LeadSummary`] of a slice in blocks of 64 samples, with
//! the same result as the scalar definition ([`LeadSummary::from_signs`]) for
//! every input.
//!
//! How: a block becomes two bit masks, `pos` and `neg` (bit `i` set when
//! sample `i` is above or below the zero level): branch-free compares over a
//! fixed-size array, which the compiler vectorises with the baseline x86-64
//! instruction set (no `target-cpu`, no `unsafe`), then one multiply per 8
//! samples to gather their 0/1 bytes into bits. Then, per block, a
//! few integer operations find every non-zero sample whose previous non-zero
//! sample had the other sign, zero runs included, with one addition: adding a
//! bit at the start of a run of ones carries to the first bit after the run.
//! The last non-zero sign is carried from block to block, so the seams cost
//! nothing, and the tail is padded with samples equal to the zero level,
//! which change nothing by the convention.

use crate::{LeadSummary, Sign};

/// Samples per block: one bit per sample in a `u64`.
const BLOCK: usize = 64;

/// A sample type the block scan reads, and how it makes its masks.
///
/// Two ways to make the masks, picked per type by measurement (see
/// `BENCHMARKS.md`); both give the same masks.
trait Lane: Copy + PartialOrd {
    /// Masks of the samples strictly above and strictly below `level`.
    ///
    /// NaN compares false both ways and so counts as a zero, as in
    /// [`Sign::of`].
    #[inline(always)]
    fn masks(block: &[Self; BLOCK], level: Self) -> (u64, u64) {
        via_bytes(block, level)
    }
}

impl Lane for f32 {}
impl Lane for i16 {}
impl Lane for i32 {}

impl Lane for f64 {
    #[inline(always)]
    fn masks(block: &[Self; BLOCK], level: Self) -> (u64, u64) {
        via_words(block, level)
    }
}

/// Compares into two byte arrays (plain lane-wise compares and narrowing,
/// which vectorise well for 16- and 32-bit samples), then gathers each 8
/// bytes into 8 bits.
#[inline(always)]
fn via_bytes<T: Copy + PartialOrd>(block: &[T; BLOCK], level: T) -> (u64, u64) {
    let mut above = [0u8; BLOCK];
    let mut below = [0u8; BLOCK];
    for ((a, b), &x) in above.iter_mut().zip(below.iter_mut()).zip(block) {
        *a = u8::from(x > level);
        *b = u8::from(x < level);
    }
    let mut pos = 0u64;
    let mut neg = 0u64;
    for (j, (a, b)) in above.chunks_exact(8).zip(below.chunks_exact(8)).enumerate() {
        let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        pos |= gather(a) << (8 * j);
        neg |= gather(b) << (8 * j);
    }
    (pos, neg)
}

/// Builds each 8 samples' 0/1 bytes straight in a `u64`: for `f64`, where
/// narrowing 64-bit compare results into a byte array costs more.
#[inline(always)]
fn via_words<T: Copy + PartialOrd>(block: &[T; BLOCK], level: T) -> (u64, u64) {
    let mut pos = 0u64;
    let mut neg = 0u64;
    for (j, eight) in block.chunks_exact(8).enumerate() {
        let mut a = 0u64;
        let mut b = 0u64;
        for (i, &x) in eight.iter().enumerate() {
            a |= u64::from(x > level) << (8 * i);
            b |= u64::from(x < level) << (8 * i);
        }
        pos |= gather(a) << (8 * j);
        neg |= gather(b) << (8 * j);
    }
    (pos, neg)
}

/// The 8 bytes (each 0 or 1) of `w` as 8 bits, byte 0 to bit 0.
///
/// The product's top byte is the sum of each byte shifted up by its index
/// (byte i meets the multiplier's byte 7 - i, which is 2^i); the terms are
/// distinct bits, so no carry mixes them.
#[inline(always)]
fn gather(w: u64) -> u64 {
    w.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The scan's state between blocks.
#[derive(Debug, Default)]
struct Scan {
    first: Sign,
    /// 1 when the last non-zero sample so far was positive, else 0.
    last_pos: u64,
    /// 1 when the last non-zero sample so far was negative, else 0.
    last_neg: u64,
    crossings: u64,
}

impl Scan {
    /// Takes the next block's masks (`pos & neg == 0`).
    #[inline(always)]
    fn block(&mut self, pos: u64, neg: u64) {
        let nonzero = pos | neg;
        let zero = !nonzero;
        // Bit i set when sample i - 1 is positive (bit 0: the carried sign).
        // Such a bit on a zero sample starts a zero run (sample i - 1 is not
        // zero), so adding it to `zero` carries to the first non-zero sample
        // after the run, and on a non-zero sample it simply stays. Either
        // way, `& nonzero` leaves exactly the non-zero samples whose previous
        // non-zero sample is positive. A run reaching the block's end carries
        // out of the word, which is right: its sign is in `last_*`.
        let after_pos = (pos << 1) | self.last_pos;
        let after_neg = (neg << 1) | self.last_neg;
        let prev_pos = zero.wrapping_add(after_pos) & nonzero;
        let prev_neg = zero.wrapping_add(after_neg) & nonzero;
        // The two sets are disjoint (a sample is not both), so one popcount.
        let changes = (prev_pos & neg) | (prev_neg & pos);
        self.crossings += u64::from(changes.count_ones());

        if self.first.is_zero() && nonzero != 0 {
            let lowest = nonzero & nonzero.wrapping_neg();
            self.first = if pos & lowest != 0 {
                Sign::Positive
            } else {
                Sign::Negative
            };
        }
        // `pos` and `neg` are disjoint, so the larger one holds the highest
        // non-zero sample; equal means both are empty and the sign carries.
        let none = u64::from(nonzero == 0);
        self.last_pos = u64::from(pos > neg) | (none & self.last_pos);
        self.last_neg = u64::from(neg > pos) | (none & self.last_neg);
    }

    fn finish(self, samples: usize) -> LeadSummary {
        let last = match (self.last_pos, self.last_neg) {
            (1, _) => Sign::Positive,
            (_, 1) => Sign::Negative,
            _ => Sign::Zero,
        };
        LeadSummary {
            samples: samples as u64,
            first: self.first,
            last,
            crossings: self.crossings,
        }
    }
}

/// The summary of `samples`, each signed by comparison with `level`.
#[inline(always)]
fn summarise<T: Lane>(samples: &[T], level: T) -> LeadSummary {
    let mut scan = Scan::default();
    let mut blocks = samples.chunks_exact(BLOCK);
    for block in &mut blocks {
        let block: &[T; BLOCK] = block.try_into().expect("chunks_exact yields whole blocks");
        let (pos, neg) = T::masks(block, level);
        scan.block(pos, neg);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padding samples equal the level: zeros, which change nothing.
        let mut padded = [level; BLOCK];
        padded[..rest.len()].copy_from_slice(rest);
        let (pos, neg) = T::masks(&padded, level);
        scan.block(pos, neg);
    }
    scan.finish(samples.len())
}

/// `samples` samples that all have sign `sign` (non-zero).
fn uniform(samples: usize, sign: Sign) -> LeadSummary {
    if samples == 0 {
        return LeadSummary::EMPTY;
    }
    LeadSummary {
        samples: samples as u64,
        first: sign,
        last: sign,
        crossings: 0,
    }
}

impl LeadSummary {
    /// Summarises `samples` (volts or any unit with its zero at `0.0`).
    ///
    /// Same result as [`LeadSummary::of_scalar`], several times faster.
    pub fn of(samples: &[f64]) -> Self {
        summarise(samples, 0.0)
    }

    /// [`LeadSummary::of`] for `f32` samples: `0.0` and `-0.0` are zeros,
    /// subnormals keep their sign.
    pub fn of_f32(samples: &[f32]) -> Self {
        summarise(samples, 0.0)
    }

    /// Summarises digital ADC samples: each sample's sign is the sign of
    /// `adc - baseline`, exact for every pair (the comparison never
    /// overflows, unlike a subtraction in `i16`).
    pub fn of_digital_i16(samples: &[i16], baseline: i32) -> Self {
        match i16::try_from(baseline) {
            Ok(level) => summarise(samples, level),
            // Outside the i16 range every sample is on the same side.
            Err(_) if baseline > 0 => uniform(samples.len(), Sign::Negative),
            Err(_) => uniform(samples.len(), Sign::Positive),
        }
    }

    /// [`LeadSummary::of_digital_i16`] for 32-bit ADC samples.
    pub fn of_digital_i32(samples: &[i32], baseline: i64) -> Self {
        match i32::try_from(baseline) {
            Ok(level) => summarise(samples, level),
            Err(_) if baseline > 0 => uniform(samples.len(), Sign::Negative),
            Err(_) => uniform(samples.len(), Sign::Positive),
        }
    }
}
