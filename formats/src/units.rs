//! Physical units of ECG files, as a factor to millivolts.

/// How many millivolts one `unit` is, for the voltage units ECG files use;
/// `None` for anything else (a file's non-ECG channels: temperature, ...).
pub fn millivolts_per(unit: &str) -> Option<f64> {
    match unit.trim() {
        "mV" | "mv" | "MV" => Some(1.0),
        "uV" | "µV" | "μV" | "uv" => Some(1e-3),
        "nV" => Some(1e-6),
        "V" | "v" => Some(1e3),
        _ => None,
    }
}
