use super::*;
use crate::read_all;

/// Packs samples in format 212, as the WFDB library writes them.
pub fn pack_212(samples: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for pair in samples.chunks(2) {
        let a = pair[0] & 0xfff;
        let b = pair.get(1).copied().unwrap_or(0) & 0xfff;
        out.push((a & 0xff) as u8);
        out.push(((a >> 8) | ((b >> 8) << 4)) as u8);
        if pair.len() == 2 {
            out.push((b & 0xff) as u8);
        }
    }
    out
}

fn interleave(leads: &[Vec<i32>]) -> Vec<i32> {
    (0..leads[0].len())
        .flat_map(|i| leads.iter().map(move |l| l[i]))
        .collect()
}

#[test]
fn reads_the_mitdb_header_with_defaults_and_descriptions() {
    let h = parse_header(
        "# comment\n208 2 360 650000 12:34:56.5 01/02/1980\n\
         208.dat 212 200 11 1024 1299 30264 0 MLII\n208.dat 212 200(1000)/uV 11 1024 995 -2007 0 V1 lead\n",
    )
    .unwrap();
    assert_eq!(h.file, "208.dat");
    assert_eq!(h.format, Format::F212);
    let r = &h.recording;
    assert_eq!(r.leads, ["MLII", "V1 lead"]);
    assert_eq!(r.sample_rate_hz, 360.0);
    assert_eq!(r.samples_per_lead, Some(650_000));
    // Baseline defaults to the ADC zero; microvolts become counts per mV.
    assert_eq!(
        r.calibration[0],
        Calibration {
            gain: 200.0,
            baseline: 1024
        }
    );
    assert_eq!(
        r.calibration[1],
        Calibration {
            gain: 200_000.0,
            baseline: 1000
        }
    );
    assert_eq!(
        r.started_at.unwrap().to_string(),
        "1980-02-01 12:34:56.5 +00:00:00"
    );
}

#[test]
fn minimal_header_gets_wfdb_defaults() {
    let h = parse_header("r 1\nr.dat 16\n").unwrap();
    assert_eq!(h.recording.sample_rate_hz, 250.0);
    assert_eq!(h.recording.leads, ["r_0"]);
    assert_eq!(
        h.recording.calibration[0],
        Calibration {
            gain: 200.0,
            baseline: 0
        }
    );
    assert_eq!(h.recording.samples_per_lead, None);
}

#[test]
fn refuses_what_it_cannot_read_exactly() {
    for (text, needle) in [
        ("r/2 2 360\n", "multi-segment"),
        ("r 1\nr.dat 80\n", "format 80"),
        ("r 1\nr.dat 212x2\n", "oversampled"),
        ("r 2\na.dat 16\nb.dat 16\n", "share the first's file"),
        ("r 2\na.dat 16\n", "2 signals declared, 1 given"),
        ("r 1\n../etc/passwd 16\n", "beside the header"),
        ("r 1\nr.dat 16 200/degC\n", "voltages"),
        ("r 1\nr.dat 16 abc\n", "gain"),
        ("r 0\n", "no signals"),
    ] {
        let e = parse_header(text).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn decodes_format_212_including_negative_and_odd_counts() {
    let leads = vec![vec![0, 2047, -2048, 5, 7], vec![-1, 1024, 100, -300, 1]];
    let dat = pack_212(&interleave(&leads));
    let h = parse_header("r 2 500 5\nr.dat 212 200 12 0\nr.dat 212 200 12 0\n").unwrap();
    let mut reader = WfdbReader::new(h, &dat[..]).unwrap();
    assert_eq!(read_all(&mut reader).unwrap(), leads);

    // Odd total: the last pair has one sample.
    let one = vec![vec![1, -2, 3]];
    let h = parse_header("r 1\nr.dat 212\n").unwrap();
    let dat = pack_212(&one[0]);
    let mut reader = WfdbReader::new(h, &dat[..]).unwrap();
    assert_eq!(read_all(&mut reader).unwrap(), one);
}

#[test]
fn decodes_format_16_in_blocks_after_the_byte_offset() {
    let leads = vec![vec![-32768, 0, 32767, 12], vec![1, -1, 2, -2]];
    let mut dat = vec![0xaa; 3];
    for v in interleave(&leads) {
        dat.extend((v as i16).to_le_bytes());
    }
    let h = parse_header("r 2 500 4\nr.dat 16+3\nr.dat 16+3\n").unwrap();
    let mut reader = WfdbReader::new(h, &dat[..]).unwrap();
    let first = reader.next_block(3).unwrap().unwrap();
    assert_eq!(first, vec![vec![-32768, 0, 32767], vec![1, -1, 2]]);
    assert_eq!(
        reader.next_block(3).unwrap().unwrap(),
        vec![vec![12], vec![-2]]
    );
    assert!(reader.next_block(3).unwrap().is_none());
}

#[test]
fn a_file_shorter_than_its_header_says_is_an_error() {
    let h = parse_header("r 1 500 10\nr.dat 16\n").unwrap();
    let dat = [1u8, 0, 2, 0, 3];
    let mut reader = WfdbReader::new(h, &dat[..]).unwrap();
    let e = read_all(&mut reader).unwrap_err();
    assert!(
        matches!(
            e,
            FormatError::Truncated {
                read: 2,
                promised: 10
            }
        ),
        "{e}"
    );
}
