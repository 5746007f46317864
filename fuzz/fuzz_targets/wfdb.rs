//! Fuzzes the WFDB reader of `ecg-formats`: the input is a header's text, a
//! NUL byte, then the signal file's bytes.
//!
//! Checks, for any input: nothing panics, hangs or exhausts memory; every
//! block has one column per declared lead, all of the same length, at most
//! the rows asked for; counts are 12-bit (format 212) or 16-bit (format
//! 16) two's complement; and no more samples come than the file holds or
//! the header declares.

#![no_main]

use ecg_formats::SignalReader;
use ecg_formats::wfdb::{Format, WfdbReader, parse_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, dat) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(header) = parse_header(text) else {
        return;
    };
    let (nsig, format, declared, offset) = (
        header.recording.leads.len(),
        header.format,
        header.recording.samples_per_lead,
        header.byte_offset,
    );
    let Ok(mut reader) = WfdbReader::new(header, dat) else {
        return;
    };
    let available = dat.len().saturating_sub(usize::try_from(offset).unwrap_or(usize::MAX)) as u64;
    let bits = format.bits();
    let range = format.range();
    let (lo, hi) = (*range.start(), *range.end());
    let mut rows = 0u64;
    while let Ok(Some(block)) = reader.next_block(7) {
        assert_eq!(block.len(), nsig);
        let n = block[0].len();
        assert!(n > 0 && n <= 7);
        for lead in &block {
            assert_eq!(lead.len(), n);
            assert!(lead.iter().all(|v| (lo..=hi).contains(v)));
        }
        rows += n as u64;
    }
    // Twice the bytes of one frame: 3, 4 or 8 per signal.
    let bytes_per_frame_x2 = u64::from(bits) / 4 * nsig as u64;
    assert!(rows * bytes_per_frame_x2 <= 2 * available + 2, "{rows} frames from {available} bytes");
    assert!(declared.is_none_or(|d| rows <= d));
});
