//! ISO/IEEE 11073-10101 (MDC) codes of the ECG's electrical potential,
//! whole and per lead, as FHIR codes them (code system
//! `urn:oid:2.16.840.1.113883.6.24`).
//!
//! The per-lead code is `MDC_ECG_ELEC_POTL` (131328) plus the lead's
//! `MDC_ECG_LEAD` discriminator: DICOM CID 3688 says the per-lead terms are
//! "arithmetically derived from the Code Values of the base terms". Where
//! the numbers come from:
//! - 131328 `MDC_ECG_ELEC_POTL` and 131329 `MDC_ECG_ELEC_POTL_I`: the HL7
//!   FHIR `Observation/ekg` example.
//! - I, II, III, aVR, aVL, aVF, V1 to V6 (131329, 131330, 131389 to 131392,
//!   131331 to 131336): published as such in MDC code tables (term codes
//!   257, 258, 317 to 320, 259 to 264 of partition 2).
//! - The other leads' discriminators (V7 = 9, V2R to V7R = 10 to 15,
//!   X, Y, Z = 16 to 18, V8 = 66, V9 = 67, V8R = 68, V9R = 69): the
//!   `MDC_ECG_LEAD_*` codes 131072 + n of DICOM CID 3001 and of FHIR's
//!   `devicemetric-type` value set; their potentials follow by the rule.

/// The code system of MDC codes in FHIR.
pub const MDC_SYSTEM: &str = "urn:oid:2.16.840.1.113883.6.24";
/// The canonical URI of the same code system (IHE PCD and HL7 device IGs
/// use it); accepted on import.
pub const MDC_SYSTEM_URI: &str = "urn:iso:std:iso:11073:10101";
/// `MDC_ECG_ELEC_POTL`: the electrical potential of the whole ECG.
pub const MDC_ECG_ELEC_POTL: u32 = 131_328;

/// ecg-stream's lead name, its `MDC_ECG_LEAD` discriminator, and the MDC
/// reference id of its potential.
const LEADS: &[(&str, u32, &str)] = &[
    ("I", 1, "MDC_ECG_ELEC_POTL_I"),
    ("II", 2, "MDC_ECG_ELEC_POTL_II"),
    ("III", 61, "MDC_ECG_ELEC_POTL_III"),
    ("aVR", 62, "MDC_ECG_ELEC_POTL_AVR"),
    ("aVL", 63, "MDC_ECG_ELEC_POTL_AVL"),
    ("aVF", 64, "MDC_ECG_ELEC_POTL_AVF"),
    ("V1", 3, "MDC_ECG_ELEC_POTL_V1"),
    ("V2", 4, "MDC_ECG_ELEC_POTL_V2"),
    ("V3", 5, "MDC_ECG_ELEC_POTL_V3"),
    ("V4", 6, "MDC_ECG_ELEC_POTL_V4"),
    ("V5", 7, "MDC_ECG_ELEC_POTL_V5"),
    ("V6", 8, "MDC_ECG_ELEC_POTL_V6"),
    ("V7", 9, "MDC_ECG_ELEC_POTL_V7"),
    ("V8", 66, "MDC_ECG_ELEC_POTL_V8"),
    ("V9", 67, "MDC_ECG_ELEC_POTL_V9"),
    ("V2R", 10, "MDC_ECG_ELEC_POTL_V2R"),
    ("V3R", 11, "MDC_ECG_ELEC_POTL_V3R"),
    ("V4R", 12, "MDC_ECG_ELEC_POTL_V4R"),
    ("V5R", 13, "MDC_ECG_ELEC_POTL_V5R"),
    ("V6R", 14, "MDC_ECG_ELEC_POTL_V6R"),
    ("V7R", 15, "MDC_ECG_ELEC_POTL_V7R"),
    ("V8R", 68, "MDC_ECG_ELEC_POTL_V8R"),
    ("V9R", 69, "MDC_ECG_ELEC_POTL_V9R"),
    ("X", 16, "MDC_ECG_ELEC_POTL_X"),
    ("Y", 17, "MDC_ECG_ELEC_POTL_Y"),
    ("Z", 18, "MDC_ECG_ELEC_POTL_Z"),
];

/// The MDC code and reference id of a lead's potential, by its name in
/// any ASCII case (`"aVR"`, `"AVR"`, `"avr"`); `None` for a lead MDC does
/// not name here.
pub fn lead_code(name: &str) -> Option<(u32, &'static str)> {
    LEADS
        .iter()
        .find(|(lead, _, _)| lead.eq_ignore_ascii_case(name))
        .map(|&(_, n, id)| (MDC_ECG_ELEC_POTL + n, id))
}

/// ecg-stream's name (`"I"`, `"aVR"`, `"V1"`, ...) of the lead whose
/// potential has MDC code `code`.
pub fn lead_of_code(code: u32) -> Option<&'static str> {
    let n = code.checked_sub(MDC_ECG_ELEC_POTL)?;
    LEADS
        .iter()
        .find(|&&(_, d, _)| d == n)
        .map(|&(lead, _, _)| lead)
}

/// The lead names of the table, in its order (for tests and docs).
pub fn standard_leads() -> impl Iterator<Item = &'static str> {
    LEADS.iter().map(|&(lead, _, _)| lead)
}
