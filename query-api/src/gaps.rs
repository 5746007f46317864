//! Which seqs an ECG still needs, from where the processor stands: the written
//! prefix `0..next_seq`, the seqs waiting for a gap, and the final seq.
//!
//! Pure arithmetic: the count is exact however large the range (a final seq
//! of ten million costs nothing), and at most `cap` seqs are listed.

/// The seqs an ECG still needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// The first `cap` missing seqs, ascending.
    pub seqs: Vec<u32>,
    /// How many are missing in all.
    pub count: u64,
}

/// The seqs in `next_seq..=final_seq` that are not in `waiting`. Without a
/// final seq, the range ends before the highest waiting seq (a later seq was
/// received, so every earlier one is needed); with neither, nothing is known
/// to be missing. Waiting seqs outside the range (already written, or beyond
/// the final one) are ignored; `waiting` need not be sorted or distinct.
pub fn missing(next_seq: u32, waiting: &[u32], final_seq: Option<u32>, cap: usize) -> Missing {
    // In u64: `final_seq + 1` overflows u32 when the final seq is u32::MAX.
    let start = u64::from(next_seq);
    let end = match (final_seq, waiting.iter().max()) {
        (Some(f), _) => u64::from(f) + 1,
        (None, Some(&w)) => u64::from(w),
        (None, None) => return Missing::default(),
    };
    if start >= end {
        return Missing::default();
    }
    let mut held: Vec<u64> = waiting
        .iter()
        .map(|&s| u64::from(s))
        .filter(|s| (start..end).contains(s))
        .collect();
    held.sort_unstable();
    held.dedup();
    let count = end - start - held.len() as u64;

    let mut seqs = Vec::with_capacity(cap.min(usize::try_from(count).unwrap_or(usize::MAX)));
    let mut from = start;
    // The gaps are the runs between consecutive held seqs, then up to `end`.
    for until in held.into_iter().chain([end]) {
        let room = (cap - seqs.len()) as u64;
        let run = (until - from).min(room);
        // Every listed seq is below `end` <= u32::MAX + 1, so it fits a u32.
        seqs.extend((from..from + run).map(|s| s as u32));
        if seqs.len() == cap {
            break;
        }
        from = until + 1;
    }
    Missing { seqs, count }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(next_seq: u32, waiting: &[u32], final_seq: Option<u32>) -> (Vec<u32>, u64) {
        let r = missing(next_seq, waiting, final_seq, 1000);
        (r.seqs, r.count)
    }

    #[test]
    fn nothing_is_missing_without_a_final_or_waiting_seq() {
        // No ecg_progress row: next_seq from blocks, nothing waiting.
        assert_eq!(m(0, &[], None), (vec![], 0));
        assert_eq!(m(7, &[], None), (vec![], 0));
    }

    #[test]
    fn without_a_final_seq_the_gaps_before_the_highest_waiting_seq_are_missing() {
        assert_eq!(m(2, &[4, 5, 7], None), (vec![2, 3, 6], 3));
        assert_eq!(m(2, &[3], None), (vec![2], 1));
    }

    #[test]
    fn with_a_final_seq_every_unwritten_seq_not_waiting_is_missing() {
        assert_eq!(m(3, &[5, 7, 9], Some(10)), (vec![3, 4, 6, 8, 10], 5));
        assert_eq!(m(0, &[], Some(2)), (vec![0, 1, 2], 3));
        // The final chunk itself may be the one waiting.
        assert_eq!(m(1, &[2], Some(2)), (vec![1], 1));
    }

    #[test]
    fn a_complete_ecg_misses_nothing() {
        assert_eq!(m(11, &[], Some(10)), (vec![], 0));
        assert_eq!(m(0, &[], Some(u32::MAX)).1, u64::from(u32::MAX) + 1);
    }

    #[test]
    fn waiting_seqs_beyond_the_final_or_already_written_are_ignored() {
        assert_eq!(m(3, &[1, 4, 12, 40], Some(5)), (vec![3, 5], 2));
        assert_eq!(m(3, &[3, 3, 4], Some(5)), (vec![5], 1));
        // Unsorted input gives the same answer.
        assert_eq!(m(3, &[40, 4, 12, 1], Some(5)), (vec![3, 5], 2));
    }

    #[test]
    fn a_huge_final_seq_is_counted_not_listed() {
        let r = missing(0, &[5, 9_999_999], Some(10_000_000), 1000);
        assert_eq!(r.count, 10_000_001 - 2);
        assert_eq!(r.seqs.len(), 1000);
        assert!(r.seqs.capacity() <= 1000, "allocated {}", r.seqs.capacity());
        let expected: Vec<u32> = (0..5).chain(6..1001).collect();
        assert_eq!(r.seqs, expected);
    }

    #[test]
    fn the_list_stops_at_the_cap_and_the_count_does_not() {
        let r = missing(0, &[1, 3], Some(9), 3);
        assert_eq!((r.seqs, r.count), (vec![0, 2, 4], 8));
        let r = missing(0, &[1, 3], Some(9), 0);
        assert_eq!((r.seqs, r.count), (vec![], 8));
    }

    #[test]
    fn the_highest_seqs_do_not_overflow() {
        let r = missing(u32::MAX - 2, &[u32::MAX - 1], Some(u32::MAX), 1000);
        assert_eq!((r.seqs, r.count), (vec![u32::MAX - 2, u32::MAX], 2));
        let r = missing(u32::MAX, &[], Some(u32::MAX), 1000);
        assert_eq!((r.seqs, r.count), (vec![u32::MAX], 1));
    }
}
