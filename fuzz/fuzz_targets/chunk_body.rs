//! Fuzzes the gateway's CSV and Arrow IPC chunk bodies (`tabular::csv`,
//! `tabular::arrow_columns`, in `ecg-input`) and the validation that follows them
//! (`take_columns`, physical and digital). The first input byte picks the format.
//!
//! Checks that nothing panics, hangs or exhausts memory, whatever the body:
//! an `Invalid` answer is fine. Arrow bodies reach arrow-ipc only after
//! `ipc::check_stream`, which exists because arrow-ipc 60 panics on some
//! malformed streams (see README.md, findings 1 and 4).

#![no_main]

use ecg_input::tabular;
use ecg_schemas::samples::Columns;
use ecg_schemas::{Calibration, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&format, body)) = data.split_first() else {
        return;
    };
    let leads = vec!["I".to_string(), "II".to_string()];
    let decoded = if format % 2 == 0 {
        tabular::csv(body, &leads, 500.0).map(Columns::Values)
    } else {
        tabular::arrow_columns(bytes::Bytes::copy_from_slice(body))
    };
    let Ok(samples) = decoded else {
        return;
    };
    let limits = Limits::default();
    let own: Vec<String> = match &samples {
        Columns::Values(v) => v.keys().cloned().collect(),
        Columns::Counts(c) => c.keys().cloned().collect(),
    };
    for names in [&own, &leads] {
        let calibration = vec![Calibration { gain: 200.0, baseline: 1024 }; names.len()];
        // Cloning the columns shares their buffers.
        let _ = limits.take_columns("/samples", names, None, samples.clone());
        let _ = limits.take_columns("/samples", names, Some(&calibration), samples.clone());
    }
});
