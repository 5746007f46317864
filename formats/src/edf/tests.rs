use super::*;
use crate::read_all;

/// One signal of a test file: label, unit, physical and digital ranges,
/// samples per record, and its samples (whole records).
pub struct TestSignal<'a> {
    pub label: &'a str,
    pub unit: &'a str,
    pub physical: (&'a str, &'a str),
    pub digital: (i32, i32),
    pub per_record: usize,
    pub samples: Vec<i16>,
}

/// How one header field of a signal is written.
type Field = dyn Fn(&TestSignal) -> String;

fn pad(out: &mut Vec<u8>, s: &str, len: usize) {
    let mut b = s.as_bytes().to_vec();
    b.resize(len, b' ');
    out.extend(b);
}

/// An EDF+ file as pyedflib and other writers lay it out.
pub fn write_edf(
    signals: &[TestSignal],
    records: usize,
    record_seconds: &str,
    reserved: &str,
) -> Vec<u8> {
    let ns = signals.len();
    let mut out = Vec::new();
    pad(&mut out, "0", 8);
    pad(&mut out, "X X X X", 80);
    pad(&mut out, "Startdate 01-FEB-2021 X X X", 80);
    pad(&mut out, "01.02.21", 8);
    pad(&mut out, "10.20.30", 8);
    pad(&mut out, &(256 * (ns + 1)).to_string(), 8);
    pad(&mut out, reserved, 44);
    pad(&mut out, &records.to_string(), 8);
    pad(&mut out, record_seconds, 8);
    pad(&mut out, &ns.to_string(), 4);
    let columns: [(usize, &Field); 10] = [
        (16, &|s| s.label.into()),
        (80, &|_| String::new()),
        (8, &|s| s.unit.into()),
        (8, &|s| s.physical.0.into()),
        (8, &|s| s.physical.1.into()),
        (8, &|s| s.digital.0.to_string()),
        (8, &|s| s.digital.1.to_string()),
        (80, &|_| String::new()),
        (8, &|s| s.per_record.to_string()),
        (32, &|_| String::new()),
    ];
    for (len, f) in columns {
        for s in signals {
            pad(&mut out, &f(s), len);
        }
    }
    for r in 0..records {
        for s in signals {
            for v in &s.samples[r * s.per_record..(r + 1) * s.per_record] {
                out.extend(v.to_le_bytes());
            }
        }
    }
    out
}

fn ecg(label: &str, samples: Vec<i16>) -> TestSignal<'_> {
    TestSignal {
        label,
        unit: "mV",
        physical: ("-163.84", "163.835"),
        digital: (-32768, 32767),
        per_record: 3,
        samples,
    }
}

#[test]
fn reads_records_across_blocks_and_skips_annotations() {
    let a: Vec<i16> = vec![1, -2, 3, 0, 5, -6];
    let b: Vec<i16> = vec![-100, 100, 0, 7, 8, 9];
    let notes = TestSignal {
        label: "EDF Annotations",
        unit: "",
        physical: ("-1", "1"),
        digital: (-32768, 32767),
        per_record: 2,
        samples: vec![0x2b2b, 0, 0, 0],
    };
    let file = write_edf(
        &[ecg("I", a.clone()), notes, ecg("II", b.clone())],
        2,
        "0.5",
        "EDF+C",
    );
    let mut reader = EdfReader::new(&file[..]).unwrap();
    let r = reader.recording().clone();
    assert_eq!(r.leads, ["I", "II"]);
    assert_eq!(r.sample_rate_hz, 6.0);
    assert_eq!(r.samples_per_lead, Some(6));
    assert_eq!(
        r.started_at.unwrap().to_string(),
        "2021-02-01 10:20:30.0 +00:00:00"
    );
    // -163.84..163.835 over -32768..32767: 200 counts per mV, baseline 0.
    assert!(
        (r.calibration[0].gain - 200.0).abs() < 1e-9,
        "{:?}",
        r.calibration[0]
    );
    assert_eq!(r.calibration[0].baseline, 0);
    let first = reader.next_block(4).unwrap().unwrap();
    assert_eq!(first[0], [1, -2, 3, 0]);
    let all = read_all(&mut reader).unwrap();
    assert_eq!(all, vec![vec![5, -6], vec![8, 9]]);
}

#[test]
fn a_half_count_baseline_doubles_the_counts_exactly() {
    // Symmetric ranges: physical 0 lies between digital -1 and 0.
    let s = TestSignal {
        label: "V1",
        unit: "uV",
        physical: ("-3276.8", "3276.8"),
        digital: (-32768, 32767),
        per_record: 2,
        samples: vec![-1, 0],
    };
    let file = write_edf(&[s], 1, "1", "");
    let mut reader = EdfReader::new(&file[..]).unwrap();
    let c = reader.recording().calibration[0];
    assert_eq!(c.baseline, -1);
    // 10 counts per uV, doubled: 20,000 counts per mV.
    assert!(
        (c.gain - 20_000.0 * 65535.0 / 65536.0).abs() < 1e-6,
        "{c:?}"
    );
    assert_eq!(read_all(&mut reader).unwrap(), vec![vec![-2, 0]]);
}

#[test]
fn an_inverted_physical_range_negates_the_counts() {
    let s = TestSignal {
        label: "aVR",
        unit: "mV",
        physical: ("10", "-10"),
        digital: (-1000, 1000),
        per_record: 1,
        samples: vec![50],
    };
    let file = write_edf(&[s], 1, "1", "");
    let mut reader = EdfReader::new(&file[..]).unwrap();
    let c = reader.recording().calibration[0];
    assert_eq!((c.gain, c.baseline), (100.0, 0));
    let counts = read_all(&mut reader).unwrap();
    // Digital 50 is -0.5 mV.
    assert_eq!(f64::from(counts[0][0] - c.baseline) / c.gain, -0.5);
}

#[test]
fn refuses_mixed_rates_unless_one_rate_is_selected() {
    let mut slow = ecg("Resp", vec![0; 2]);
    slow.per_record = 1;
    let file = write_edf(&[ecg("I", vec![4; 6]), slow], 2, "1", "");
    let e = EdfReader::new(&file[..]).unwrap_err().to_string();
    assert!(e.contains("different sample rates"), "{e}");
    let mut reader = EdfReader::with_signals(&file[..], &["I".to_string()]).unwrap();
    assert_eq!(reader.recording().leads, ["I"]);
    assert_eq!(read_all(&mut reader).unwrap(), vec![vec![4; 6]]);
    let e = EdfReader::with_signals(&file[..], &["V9".to_string()]).unwrap_err();
    assert!(e.to_string().contains("no signal \"V9\""), "{e}");
}

#[test]
fn refuses_discontinuous_files_and_non_voltages() {
    let e = EdfReader::new(&write_edf(&[ecg("I", vec![0; 3])], 1, "1", "EDF+D")[..]).unwrap_err();
    assert!(e.to_string().contains("EDF+D"), "{e}");
    let mut t = ecg("Temp", vec![0; 3]);
    t.unit = "degC";
    let e = EdfReader::new(&write_edf(&[t], 1, "1", "")[..]).unwrap_err();
    assert!(e.to_string().contains("not a voltage"), "{e}");
}

#[test]
fn truncated_and_malformed_headers_are_errors() {
    let file = write_edf(&[ecg("I", vec![1; 6])], 2, "1", "");
    let e = read_all(&mut EdfReader::new(&file[..file.len() - 1]).unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            FormatError::Truncated {
                read: 3,
                promised: 6
            }
        ),
        "{e}"
    );
    assert!(EdfReader::new(&file[..100]).is_err());
    let mut bad = file.clone();
    bad[236..244].copy_from_slice(b"x       ");
    let e = EdfReader::new(&bad[..]).unwrap_err().to_string();
    assert!(e.contains("number of data records"), "{e}");
}
