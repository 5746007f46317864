//! MIT-BIH Arrhythmia Database record 100, read by this crate: its
//! annotation file against the CSV of its beats, and `ecg-signal`'s beat
//! detector against the cardiologists' beats, at the record's 360 Hz, at
//! other rates (the record resampled) and on its ADC counts.
//!
//! The record is read from `ECG_MITDB` (the record's path without
//! extension), by default `data/mitdb/100` in the repository,
//! as the storage bench does. Without it these tests fail, saying where
//! they looked: they are the detector's evidence and must not pass unseen.
//!
//! Scoring (`ecg_signal::score`): a detection matches a reference beat
//! within 150 ms, as ANSI/AAMI EC57 and WFDB's `bxb`. Two periods: the whole
//! record, and `bxb`'s default from 5 minutes on. Both must reach the
//! required sensitivity and positive predictivity.

use std::path::PathBuf;
use std::sync::OnceLock;

use ecg_formats::wfdb::annotations::{self, Annotation};
use ecg_formats::{open_file, read_all};
use ecg_signal::score::{self, Score, Scoring};
use ecg_signal::{Adc, Analytic, BeatDetector};

const RATE_HZ: f64 = 360.0;

fn record() -> PathBuf {
    match std::env::var_os("ECG_MITDB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mitdb/100"),
    }
}

fn open(ext: &str) -> std::fs::File {
    let path = record().with_extension(ext);
    std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; set ECG_MITDB to MIT-BIH record 100 (path without extension)",
            path.display()
        )
    })
}

/// Lead MLII's ADC counts, its baseline and gain.
struct Record {
    counts: Vec<i32>,
    adc: Adc,
    /// The cardiologists' beats, from `100.beats.csv`.
    beats: Vec<u64>,
}

fn load() -> &'static Record {
    static RECORD: OnceLock<Record> = OnceLock::new();
    RECORD.get_or_init(|| {
        let mut reader = open_file(&record().with_extension("hea"), &[]).unwrap();
        let rec = reader.recording().clone();
        assert_eq!(rec.sample_rate_hz, RATE_HZ);
        assert_eq!(rec.leads[0], "MLII");
        let counts = read_all(reader.as_mut()).unwrap().swap_remove(0);
        let cal = rec.calibration[0];
        let csv = std::io::read_to_string(open("beats.csv")).unwrap();
        let beats = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        Record {
            counts,
            adc: Adc {
                baseline: cal.baseline,
                gain: cal.gain,
            },
            beats,
        }
    })
}

fn millivolts(r: &Record) -> Vec<f64> {
    r.counts.iter().map(|&c| r.adc.millivolts(c)).collect()
}

fn detect(samples: &[f64], rate_hz: f64) -> Vec<u64> {
    let mut d = BeatDetector::new(rate_hz).unwrap();
    let mut beats = Vec::new();
    d.push(samples, &mut beats);
    d.finish(&mut beats);
    beats
}

/// Scores `detected` both ways, prints, and returns (whole record, bxb).
/// Also checks the R peaks: matched detections are at most 10 ms from
/// the reference, 3 ms on average (the reference marks the R peak).
fn scores(label: &str, reference: &[u64], detected: &[u64], rate_hz: f64) -> (Score, Score) {
    let whole = score::compare(reference, detected, Scoring::whole(rate_hz));
    let bxb = score::compare(reference, detected, Scoring::bxb(rate_hz));
    let d = score::detail(reference, detected, Scoring::whole(rate_hz));
    let offsets: Vec<f64> = d
        .matched
        .iter()
        .map(|&(r, t)| (t as f64 - r as f64) / rate_hz * 1000.0)
        .collect();
    let mean = offsets.iter().sum::<f64>() / offsets.len().max(1) as f64;
    let mean_abs = offsets.iter().map(|o| o.abs()).sum::<f64>() / offsets.len().max(1) as f64;
    let max_abs = offsets.iter().fold(0.0f64, |m, o| m.max(o.abs()));
    println!("{label}: whole record {whole}; from 5 min (bxb) {bxb}");
    println!(
        "{label}: R peak offset from the reference, mean {mean:+.1} ms, mean |offset| {mean_abs:.1} ms, largest {max_abs:.1} ms; missed {:?}, extra {:?}",
        d.missed, d.extra
    );
    assert!(
        mean_abs <= 3.0 && max_abs <= 10.0,
        "{label}: R peaks {mean_abs:.1} ms from the reference on average, {max_abs:.1} ms at most"
    );
    (whole, bxb)
}

fn assert_at_least(label: &str, s: Score, min: f64) {
    let (se, pp) = (s.sensitivity().unwrap(), s.positive_predictivity().unwrap());
    assert!(
        se >= min && pp >= min,
        "{label}: {s}, below {:.1} %",
        min * 100.0
    );
}

#[test]
fn reading_100_atr_gives_the_beats_of_the_csv() {
    let anns = annotations::read_annotations(std::io::BufReader::new(open("atr"))).unwrap();
    let csv = std::io::read_to_string(open("beats.csv")).unwrap();
    let expected: Vec<(u64, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let (s, sym) = l.split_once(',').unwrap();
            (s.parse().unwrap(), sym.to_string())
        })
        .collect();
    let beats: Vec<(u64, String)> = anns
        .iter()
        .filter(|a| a.is_beat())
        .map(|a| (a.sample, annotations::symbol(a.code).unwrap().to_string()))
        .collect();
    assert_eq!(beats.len(), 2273);
    assert_eq!(beats, expected);
    let non_beats: Vec<&Annotation> = anns.iter().filter(|a| !a.is_beat()).collect();
    println!(
        "100.atr: {} annotations, {} beats; non-beats: {:?}",
        anns.len(),
        beats.len(),
        non_beats
            .iter()
            .map(|a| (
                a.sample,
                annotations::symbol(a.code),
                a.aux
                    .as_ref()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
            ))
            .collect::<Vec<_>>()
    );
}

#[test]
fn writing_100_atr_back_gives_the_same_file() {
    let mut original = Vec::new();
    std::io::Read::read_to_end(&mut open("atr"), &mut original).unwrap();
    let anns = annotations::read_annotations(&original[..]).unwrap();
    let mut written = Vec::new();
    annotations::write_annotations(&mut written, &anns).unwrap();
    assert_eq!(annotations::read_annotations(&written[..]).unwrap(), anns);
    assert_eq!(written, original, "byte for byte");
}

#[test]
fn detected_beats_export_as_an_annotation_file() {
    let r = load();
    let beats = detect(&millivolts(r)[..RATE_HZ as usize * 60], RATE_HZ);
    let mut file = Vec::new();
    annotations::write_beats(&mut file, &beats).unwrap();
    let back: Vec<u64> = annotations::read_annotations(&file[..])
        .unwrap()
        .iter()
        .map(|a| a.sample)
        .collect();
    assert_eq!(back, beats);
}

#[test]
fn beats_of_record_100_at_360_hz() {
    let r = load();
    let beats = detect(&millivolts(r), RATE_HZ);
    let (whole, bxb) = scores("360 Hz", &r.beats, &beats, RATE_HZ);
    assert_at_least("360 Hz, whole record", whole, 0.998);
    assert_at_least("360 Hz, from 5 min", bxb, 0.998);
}

#[test]
fn beats_of_adc_counts_are_the_beats_of_millivolts() {
    let r = load();
    let mut d = BeatDetector::new(RATE_HZ).unwrap();
    let mut beats = Vec::new();
    d.push_digital(&r.counts, r.adc, &mut beats);
    d.finish(&mut beats);
    assert_eq!(beats, detect(&millivolts(r), RATE_HZ));
    // The same ECG from a 24-bit ADC: counts 1,000 times finer, another
    // baseline; the thresholds are relative, so the beats stay.
    let adc = Adc {
        baseline: 1 << 23,
        gain: r.adc.gain * 1000.0,
    };
    let counts: Vec<i32> = r
        .counts
        .iter()
        .map(|&c| (c - r.adc.baseline) * 1000 + adc.baseline)
        .collect();
    let mut d = BeatDetector::new(RATE_HZ).unwrap();
    let mut fine = Vec::new();
    d.push_digital(&counts, adc, &mut fine);
    d.finish(&mut fine);
    let (whole, bxb) = scores("360 Hz, 24-bit ADC", &r.beats, &fine, RATE_HZ);
    assert_at_least("24-bit ADC, whole record", whole, 0.998);
    assert_at_least("24-bit ADC, from 5 min", bxb, 0.998);
}

/// `x` at `to_hz` by linear interpolation between its samples at `from_hz`.
fn resample(x: &[f64], from_hz: f64, to_hz: f64) -> Vec<f64> {
    let n = ((x.len() - 1) as f64 * to_hz / from_hz).floor() as usize + 1;
    (0..n)
        .map(|k| {
            let t = k as f64 * from_hz / to_hz;
            let i = (t.floor() as usize).min(x.len() - 2);
            let f = t - i as f64;
            x[i] + f * (x[i + 1] - x[i])
        })
        .collect()
}

#[test]
fn beats_of_record_100_resampled() {
    let r = load();
    let mv = millivolts(r);
    for rate in [125.0, 250.0, 500.0, 1000.0, 2000.0] {
        let x = resample(&mv, RATE_HZ, rate);
        let reference: Vec<u64> = r
            .beats
            .iter()
            .map(|&s| (s as f64 * rate / RATE_HZ).round() as u64)
            .collect();
        let beats = detect(&x, rate);
        let label = format!("{rate} Hz");
        let (whole, bxb) = scores(&label, &reference, &beats, rate);
        assert_at_least(&label, whole, 0.99);
        assert_at_least(&label, bxb, 0.99);
    }
}

#[test]
fn record_100_chunked_through_saved_states_gives_the_beats_of_one_pass() {
    // Five chunkings of the real record: fixed sizes from 7 samples to the
    // whole record, and random ones; the state saved and restored after every
    // chunk (a processor that keeps no detector in memory).
    let r = load();
    let mv = millivolts(r);
    let expected = detect(&mv, RATE_HZ);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |max: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + (seed % max as u64) as usize
    };
    let sizes: [Box<dyn FnMut() -> usize>; 5] = [
        Box::new(|| 1_000_000),
        Box::new(|| 360),
        Box::new(|| 21_600),
        Box::new(|| 7),
        Box::new(move || random(5_000)),
    ];
    for mut size in sizes {
        let mut state = BeatDetector::new(RATE_HZ).unwrap().save();
        let mut beats = Vec::new();
        let mut start = 0;
        while start < mv.len() {
            let end = (start + size()).min(mv.len());
            let mut d = BeatDetector::restore(&state).unwrap();
            d.push(&mv[start..end], &mut beats);
            state = d.save();
            start = end;
        }
        BeatDetector::restore(&state).unwrap().finish(&mut beats);
        assert_eq!(beats, expected);
    }
}

#[test]
fn hrv_of_the_detected_beats_is_that_of_the_reference() {
    let r = load();
    let beats = detect(&millivolts(r), RATE_HZ);
    let detected = ecg_signal::hrv::hrv(&beats, RATE_HZ).unwrap();
    let reference = ecg_signal::hrv::hrv(&r.beats, RATE_HZ).unwrap();
    println!("HRV, detected: {detected:?}");
    println!("HRV, reference: {reference:?}");
    // An interval on the 20 % boundary may fall either side of it.
    assert!(detected.normal.abs_diff(reference.normal) <= 2);
    assert!((detected.mean_hr_bpm - reference.mean_hr_bpm).abs() < 0.05);
    assert!((detected.sdnn_ms - reference.sdnn_ms).abs() < 1.0);
    let rmssd = |h: ecg_signal::hrv::Hrv| h.rmssd_ms.unwrap();
    assert!((rmssd(detected) - rmssd(reference)).abs() < 2.0);
}
