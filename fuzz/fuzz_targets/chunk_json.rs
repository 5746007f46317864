//! Fuzzes the gateway's JSON bodies: `json::decode` of `ChunkRequest` and
//! `CreateEcg` on arbitrary bytes, then the validation the gateway runs on
//! what decoded (`check_header`, `check_samples`, and for digital ECGs
//! `check_adc` and `check_signal`).
//!
//! Checks that nothing panics (nor hangs or exhausts memory), whatever the
//! body: decoding errors and `Invalid` answers are both fine. And that the
//! fast chunk parser (`json::fast::chunk`, used by `json::decode_chunk`)
//! accepts only bodies serde accepts, decoding them to the same request.

#![no_main]

use ecg_input::json;
use ecg_schemas::Limits;
use ecg_schemas::api::{ChunkRequest, CreateEcg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();

    // The gateway's chunk decoder is a hand-written fast path that must agree
    // with serde exactly: whatever it accepts, serde accepts as the same
    // request, samples compared bit for bit.
    let slow = json::decode::<ChunkRequest>(data);
    if let Some(fast) = json::fast::chunk(data) {
        match &slow {
            Ok(slow) => assert!(
                same_request(&fast, slow),
                "fast and serde paths differ:\n fast  {fast:?}\n serde {slow:?}"
            ),
            Err(e) => panic!("the fast path accepts a body serde refuses ({e}):\n {fast:?}"),
        }
    }

    if let Ok(req) = slow {
        // The request's own leads: every key matches, so the length, limit
        // and finiteness checks are reached.
        let own: Vec<String> = req.samples.keys().cloned().collect();
        let _ = limits.check_samples("/samples", &own, &req.samples);
        // A declared ECG's leads: exercises the unknown/missing-lead paths.
        let fixed = ["I".to_string(), "II".to_string()];
        let _ = limits.check_samples("/samples", &fixed, &req.samples);
    }

    if let Ok(ecg) = json::decode::<CreateEcg>(data) {
        let _ = limits.check_header(&ecg.device_id, ecg.sample_rate_hz, &ecg.leads);
        if let Some(signal) = &ecg.signal {
            let _ = limits.check_samples("/signal", &ecg.leads, signal);
        }
        // Digital ECGs: calibrations, then the counts against them, as the
        // gateway does when both are valid (and here even when they are not).
        let calibration = ecg
            .adc
            .as_ref()
            .map(|adc| limits.check_adc(&ecg.leads, adc));
        if let (Some(Ok(calibration)), Some(signal)) = (&calibration, &ecg.signal) {
            let _ = limits.check_signal("/signal", &ecg.leads, Some(calibration), signal);
        }
    }
});

fn same_request(a: &ChunkRequest, b: &ChunkRequest) -> bool {
    a.seq == b.seq
        && a.r#final == b.r#final
        && a.samples.len() == b.samples.len()
        && a.samples
            .iter()
            .zip(&b.samples)
            .all(|((ka, va), (kb, vb))| {
                ka == kb
                    && va.len() == vb.len()
                    && va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits())
            })
}
