//! Fuzzes the EDF/EDF+ reader of `ecg-formats` with arbitrary files.
//!
//! Checks, for any input: nothing panics, hangs or exhausts memory; the
//! calibrations are positive gains; every block has one column per selected
//! lead, all of one length; and no more samples come than the records
//! present hold.

#![no_main]

use ecg_formats::SignalReader;
use ecg_formats::edf::EdfReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = EdfReader::new(data) else {
        return;
    };
    let recording = reader.recording().clone();
    assert!(recording.calibration.iter().all(|c| c.gain > 0.0 && c.gain.is_finite()));
    assert!(recording.sample_rate_hz > 0.0);
    let header_bytes = 256 * (reader.header().signals.len() + 1);
    let mut samples = 0u64;
    while let Ok(Some(block)) = reader.next_block(1000) {
        assert_eq!(block.len(), recording.leads.len());
        let n = block[0].len();
        assert!(n > 0 && n <= 1000);
        assert!(block.iter().all(|l| l.len() == n));
        samples += n as u64;
    }
    // Each sample of a selected lead takes 2 bytes after the header.
    assert!(samples * 2 <= data.len().saturating_sub(header_bytes) as u64);
});
