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

#[test]
fn decodes_format_32_little_endian() {
    let leads = vec![vec![i32::MIN, 0, i32::MAX], vec![-1, 70_000, -70_000]];
    let dat: Vec<u8> = interleave(&leads)
        .into_iter()
        .flat_map(i32::to_le_bytes)
        .collect();
    let h = parse_header("r 2 500 3\nr.dat 32\nr.dat 32\n").unwrap();
    assert_eq!(h.format, Format::F32);
    let mut reader = WfdbReader::new(h, &dat[..]).unwrap();
    assert_eq!(read_all(&mut reader).unwrap(), leads);
}

#[test]
fn base_time_fractions_are_read_exactly() {
    let h = parse_header("r 1 360 10 23:59:59.123456 29/02/2024\nr.dat 16\n").unwrap();
    let t = h.recording.started_at.unwrap();
    assert_eq!(t.to_string(), "2024-02-29 23:59:59.123456 +00:00:00");
    assert_eq!(t.nanosecond(), 123_456_000);
    for bad in ["12:00:60", "12:00:1x", "12:00:01.2e3", "24:00:00"] {
        let e = parse_header(&format!("r 1 360 10 {bad} 01/01/2000\nr.dat 16\n")).unwrap_err();
        assert!(e.to_string().contains("base time"), "{bad}: {e}");
    }
}

mod writing {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use time::macros::datetime;

    use super::super::write::*;
    use super::*;

    /// MIT-BIH record 100, from `ECG_MITDB` (path without extension) or
    /// the repository's `data/mitdb/100`, as `formats/tests/mitdb.rs`.
    fn mitdb(ext: &str) -> PathBuf {
        let record = match std::env::var_os("ECG_MITDB") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mitdb/100"),
        };
        record.with_extension(ext)
    }

    fn read(path: PathBuf) -> Vec<u8> {
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn specs(recording: &Recording) -> Vec<SignalSpec<'_>> {
        recording
            .leads
            .iter()
            .zip(&recording.calibration)
            .map(|(lead, c)| SignalSpec {
                description: lead,
                gain: c.gain,
                baseline: c.baseline,
                units: "mV",
            })
            .collect()
    }

    /// Sum modulo 2^16 as a signed 16-bit value, the long way round.
    fn checksum(lead: &[i32]) -> i16 {
        let sum: i64 = lead.iter().map(|&v| i64::from(v)).sum();
        let m = sum.rem_euclid(65536);
        (if m > 32767 { m - 65536 } else { m }) as i16
    }

    /// Writes `leads` frame by frame, reads the record back, and checks
    /// counts, recording, length and the header's fields.
    fn round_trip(format: Format, leads: &[Vec<i32>]) -> (Vec<u8>, String) {
        let frames = leads[0].len();
        let names: Vec<String> = (0..leads.len()).map(|i| format!("lead {i}")).collect();
        let recording = Recording {
            leads: names,
            sample_rate_hz: 500.0,
            calibration: (0..leads.len())
                .map(|i| Calibration {
                    gain: 100.0 + i as f64 / 3.0,
                    baseline: i as i32 - 6,
                })
                .collect(),
            samples_per_lead: (frames > 0).then_some(frames as u64),
            started_at: Some(datetime!(2024-03-01 08:15:30.25 UTC)),
        };
        let mut writer = DatWriter::new(format, leads.len());
        let mut dat = Vec::new();
        for frame in 0..frames {
            let frame: Vec<i32> = leads.iter().map(|l| l[frame]).collect();
            writer.push_frame(&frame, &mut dat).unwrap();
        }
        let written = writer.finish(&mut dat);
        assert_eq!(
            dat.len() as u64,
            dat_len(format, (frames * leads.len()) as u64)
        );
        let expected_checksums: Vec<i16> = leads.iter().map(|l| checksum(l)).collect();
        assert_eq!(written.checksums, expected_checksums);
        let first: Vec<i32> = leads
            .iter()
            .map(|l| l.first().copied().unwrap_or(0))
            .collect();
        assert_eq!(written.initial, first);
        assert_eq!(written.samples_per_signal, frames as u64);
        let text = header_text(
            "rec_1",
            "rec_1.dat",
            format,
            recording.sample_rate_hz,
            recording.started_at,
            &specs(&recording),
            &written,
        )
        .unwrap();
        let header = parse_header(&text).unwrap();
        assert_eq!(header.recording, recording, "{text}");
        assert_eq!((header.file.as_str(), header.format), ("rec_1.dat", format));
        let mut reader = WfdbReader::new(header, &dat[..]).unwrap();
        assert_eq!(read_all(&mut reader).unwrap(), leads, "{text}");
        (dat, text)
    }

    /// Frames cycling through `values`, each signal shifted by one.
    fn leads_of(values: &[i32], signals: usize, frames: usize) -> Vec<Vec<i32>> {
        (0..signals)
            .map(|s| {
                (0..frames)
                    .map(|f| values[(f + s) % values.len()])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn records_of_each_format_read_back_exactly_at_the_extremes() {
        for format in [Format::F212, Format::F16, Format::F32] {
            let (lo, hi) = (*format.range().start(), *format.range().end());
            let values = [lo, hi, 0, -1, 1, lo + 1, hi - 1];
            // 1×7, 1×8, 3×7 (odd totals: a half pair at the end of 212), 12×…
            for (signals, frames) in [(1, 7), (1, 8), (3, 7), (12, 5), (12, 6), (1, 1), (2, 0)] {
                let leads = leads_of(&values, signals, frames);
                let (dat, text) = round_trip(format, &leads);
                let bits = format.bits();
                assert!(
                    text.lines().nth(1).is_none_or(
                        |l| l.contains(&format!(" {} 100(-6)/mV {bits} 0 ", format.number()))
                    ),
                    "{text}"
                );
                if format == Format::F212 {
                    // The reader's test packer, written from `signal(5)`.
                    assert_eq!(dat, pack_212(&interleave(&leads)), "{signals}×{frames}");
                }
            }
        }
        assert_eq!(Format::F212.range(), -2048..=2047);
        assert_eq!(Format::F16.range(), -32768..=32767);
        assert_eq!(Format::F32.range(), i32::MIN..=i32::MAX);
    }

    #[test]
    fn packs_212_pairs_across_frames_as_signal_5_says() {
        let mut writer = DatWriter::new(Format::F212, 3);
        let mut dat = Vec::new();
        writer.push_frame(&[0x123, -1, 0x7ff], &mut dat).unwrap();
        // One pair written, 0x7ff waits for its partner in the next frame.
        assert_eq!(dat, [0x23, 0xf1, 0xff]);
        writer.push_frame(&[-2048, 5, 6], &mut dat).unwrap();
        assert_eq!(dat[3..], [0xff, 0x87, 0x00, 0x05, 0x00, 0x06]);
        let written = writer.finish(&mut dat);
        // Six samples: no half pair left.
        assert_eq!(dat.len(), 9);
        assert_eq!(written.initial, [0x123, -1, 0x7ff]);

        let mut writer = DatWriter::new(Format::F212, 1);
        let mut dat = Vec::new();
        writer.push_frame(&[-3], &mut dat).unwrap();
        assert!(dat.is_empty());
        writer.finish(&mut dat);
        assert_eq!(dat, [0xfd, 0x0f]);
        assert_eq!(dat_len(Format::F212, 1), 2);
        assert_eq!(dat_len(Format::F212, 4), 6);
    }

    #[test]
    fn counts_outside_the_format_are_refused_and_write_nothing() {
        for format in [Format::F212, Format::F16] {
            let (lo, hi) = (*format.range().start(), *format.range().end());
            for bad in [lo - 1, hi + 1] {
                let mut writer = DatWriter::new(format, 2);
                let mut dat = Vec::new();
                writer.push_frame(&[1, 2], &mut dat).unwrap();
                let before = dat.clone();
                let e = writer.push_frame(&[3, bad], &mut dat).unwrap_err();
                let e = e.to_string();
                assert!(
                    e.contains(&format!("signal 1, frame 1: count {bad}")),
                    "{e}"
                );
                let e = writer.push_block(&[vec![0, 0], vec![0, bad]], &mut dat);
                assert!(e.unwrap_err().to_string().contains("frame 2"));
                assert_eq!(dat, before);
                assert_eq!(writer.frames(), 1);
                writer.push_frame(&[3, 4], &mut dat).unwrap();
                let written = writer.finish(&mut dat);
                assert_eq!(written.checksums, [4, 6]);
                assert_eq!(written.samples_per_signal, 2);
            }
        }
        let mut writer = DatWriter::new(Format::F16, 2);
        assert!(writer.push_frame(&[1], &mut Vec::new()).is_err());
        assert!(
            writer
                .push_block(&[vec![1, 2], vec![3]], &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn format_for_picks_the_narrowest() {
        assert_eq!(format_for(-2048, 2047), Format::F212);
        assert_eq!(format_for(0, 0), Format::F212);
        assert_eq!(format_for(-2049, 0), Format::F16);
        assert_eq!(format_for(0, 2048), Format::F16);
        assert_eq!(format_for(-32768, 32767), Format::F16);
        assert_eq!(format_for(-32769, 0), Format::F32);
        assert_eq!(format_for(0, 32768), Format::F32);
        assert_eq!(format_for(i32::MIN, i32::MAX), Format::F32);
        assert_eq!(format_for(1, -1), Format::F212);
    }

    /// The signal lines' initial values and checksums of a header's text.
    fn header_fields(text: &str) -> Vec<(i32, i16)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[5].parse().unwrap(), f[6].parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn mitdb_100_re_encodes_byte_for_byte_with_its_checksums() {
        let original_text = String::from_utf8(read(mitdb("hea"))).unwrap();
        let original_dat = read(mitdb("dat"));
        let header = parse_header(&original_text).unwrap();
        let recording = header.recording.clone();
        assert_eq!(header.format, Format::F212);
        let mut reader = WfdbReader::new(header, &original_dat[..]).unwrap();
        let mut writer = DatWriter::new(Format::F212, recording.leads.len());
        let mut dat = Vec::with_capacity(original_dat.len());
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        while let Some(block) = reader.next_block(4096).unwrap() {
            for lead in &block {
                lo = lo.min(*lead.iter().min().unwrap());
                hi = hi.max(*lead.iter().max().unwrap());
            }
            writer.push_block(&block, &mut dat).unwrap();
        }
        assert_eq!(format_for(lo, hi), Format::F212);
        let written = writer.finish(&mut dat);
        assert_eq!(written.samples_per_signal, 650_000);
        assert_eq!(
            dat_len(Format::F212, written.samples_per_signal * 2),
            original_dat.len() as u64
        );
        assert!(dat == original_dat, "the re-encoded 100.dat differs");

        let original = header_fields(&original_text);
        assert_eq!(original.len(), 2);
        let ours: Vec<(i32, i16)> = written
            .initial
            .iter()
            .copied()
            .zip(written.checksums.iter().copied())
            .collect();
        assert_eq!(ours, original);

        let text = header_text(
            "100",
            "100.dat",
            Format::F212,
            recording.sample_rate_hz,
            recording.started_at,
            &specs(&recording),
            &written,
        )
        .unwrap();
        assert_eq!(
            text,
            "100 2 360 650000\n\
             100.dat 212 200(1024)/mV 12 0 995 -22131 0 MLII\n\
             100.dat 212 200(1024)/mV 12 0 1011 20052 0 V5\n"
        );
        let reread = parse_header(&text).unwrap();
        assert_eq!(reread.recording, recording);
        assert_eq!(header_fields(&text), original);
    }

    #[test]
    fn frequencies_gains_and_times_read_back_exactly() {
        let written = Written {
            checksums: vec![0],
            initial: vec![0],
            samples_per_signal: 10,
        };
        for (fs, gain) in [
            (128.0 / 3.0, 1.0 / 3.0),
            (0.1, 1e-7),
            (1e6, 123_456.789),
            (250.0, 200.0),
        ] {
            let spec = SignalSpec {
                description: "V1 (chest)",
                gain,
                baseline: -5,
                units: "uV",
            };
            let text = header_text("r", "r.dat", Format::F16, fs, None, &[spec], &written).unwrap();
            let h = parse_header(&text).unwrap();
            assert_eq!(h.recording.sample_rate_hz.to_bits(), fs.to_bits(), "{text}");
            // Microvolts: the reader gives counts per millivolt.
            assert_eq!(h.recording.calibration[0].gain, gain * 1000.0, "{text}");
            assert_eq!(h.recording.leads, ["V1 (chest)"]);
        }

        let spec = SignalSpec {
            description: "II",
            gain: 200.0,
            baseline: 0,
            units: "mV",
        };
        let at = |t: time::OffsetDateTime| {
            header_text("r", "r.dat", Format::F16, 500.0, Some(t), &[spec], &written)
        };
        let text = at(datetime!(2023-12-31 23:30:05.000120 -01:00)).unwrap();
        assert!(
            text.starts_with("r 1 500 10 00:30:05.00012 01/01/2024\n"),
            "{text}"
        );
        assert_eq!(
            parse_header(&text).unwrap().recording.started_at,
            Some(datetime!(2024-01-01 00:30:05.000120 UTC))
        );
        let text = at(datetime!(2024-01-01 00:00:00 UTC)).unwrap();
        assert!(
            text.starts_with("r 1 500 10 00:00:00 01/01/2024\n"),
            "{text}"
        );
        let e = at(datetime!(2024-01-01 00:00:00.0000001 UTC)).unwrap_err();
        assert!(e.to_string().contains("microsecond"), "{e}");
    }

    #[test]
    fn names_that_would_break_the_header_are_refused() {
        let written = Written {
            checksums: vec![0],
            initial: vec![0],
            samples_per_signal: 1,
        };
        let spec = |description, gain, units| SignalSpec {
            description,
            gain,
            baseline: 0,
            units,
        };
        let text = |record, file, fs, s| {
            header_text(record, file, Format::F16, fs, None, &[s], &written)
                .map_err(|e| e.to_string())
        };
        for (result, needle) in [
            (text("a-b", "r.dat", 360.0, spec("I", 1.0, "mV")), "'-'"),
            (text("", "r.dat", 360.0, spec("I", 1.0, "mV")), "empty"),
            (
                text("r", "../r.dat", 360.0, spec("I", 1.0, "mV")),
                "../r.dat",
            ),
            (text("r", "r dat", 360.0, spec("I", 1.0, "mV")), "r dat"),
            (text("r", "r.dat", 0.0, spec("I", 1.0, "mV")), "frequency"),
            (
                text("r", "r.dat", f64::NAN, spec("I", 1.0, "mV")),
                "frequency",
            ),
            (text("r", "r.dat", 360.0, spec("#I", 1.0, "mV")), "\"#I\""),
            (
                text("r", "r.dat", 360.0, spec("I\n# x", 1.0, "mV")),
                "\"I\\n# x\"",
            ),
            (
                text("r", "r.dat", 360.0, spec("I\r", 1.0, "mV")),
                "\"I\\r\"",
            ),
            (text("r", "r.dat", 360.0, spec(" I", 1.0, "mV")), "\" I\""),
            (text("r", "r.dat", 360.0, spec("", 1.0, "mV")), "\"\""),
            (text("r", "r.dat", 360.0, spec("I", 0.0, "mV")), "gain 0"),
            (
                text("r", "r.dat", 360.0, spec("I", f64::INFINITY, "mV")),
                "gain inf",
            ),
            (text("r", "r.dat", 360.0, spec("I", 1.0, "m V")), "units"),
            (text("r", "r.dat", 360.0, spec("I", 1.0, "")), "units"),
        ] {
            let e = result.unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(check_record_name("Rec_100").is_ok());
        let e = check_record_name("100.hea").unwrap_err().to_string();
        assert!(e.contains("'.'"), "{e}");
        assert!(header_text("r", "r.dat", Format::F16, 1.0, None, &[], &written).is_err());
        let two = [spec("I", 1.0, "mV"), spec("II", 1.0, "mV")];
        assert!(header_text("r", "r.dat", Format::F16, 1.0, None, &two, &written).is_err());
    }

    /// A record in one format, its counts (one vector per lead, often at
    /// the format's extremes) and the sizes of the pieces to push it in.
    fn record() -> impl Strategy<Value = (Format, Vec<Vec<i32>>, Vec<usize>)> {
        (
            prop_oneof![Just(Format::F212), Just(Format::F16), Just(Format::F32)],
            1usize..=12,
            0usize..40,
        )
            .prop_flat_map(|(format, signals, frames)| {
                let range = format.range();
                let count = prop_oneof![
                    Just(*range.start()),
                    Just(*range.end()),
                    -3..=3,
                    range.clone(),
                ];
                (
                    Just(format),
                    prop::collection::vec(prop::collection::vec(count, frames), signals),
                    prop::collection::vec(1usize..8, 1..8),
                )
            })
    }

    proptest! {
        #[test]
        fn any_frames_in_any_pieces_read_back_exactly((format, leads, pieces) in record()) {
            let (whole, _) = round_trip(format, &leads);
            // Pushed in pieces (one frame, or a block of several), the
            // bytes are those of one frame at a time.
            let mut writer = DatWriter::new(format, leads.len());
            let mut dat = Vec::new();
            let (mut at, frames) = (0, leads[0].len());
            for &n in pieces.iter().cycle() {
                if at >= frames {
                    break;
                }
                let end = (at + n).min(frames);
                if end - at == 1 {
                    let frame: Vec<i32> = leads.iter().map(|l| l[at]).collect();
                    writer.push_frame(&frame, &mut dat).unwrap();
                } else {
                    let block: Vec<&[i32]> = leads.iter().map(|l| &l[at..end]).collect();
                    writer.push_block(&block, &mut dat).unwrap();
                }
                at = end;
            }
            let written = writer.finish(&mut dat);
            prop_assert_eq!(written.samples_per_signal, frames as u64);
            prop_assert!(dat == whole);
        }
    }
}
