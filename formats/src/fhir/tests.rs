use ecg_schemas::samples::Columns;
use ecg_schemas::{Calibration, Units};
use proptest::prelude::*;
use time::macros::datetime;

use super::decimal::{self, Decimal, reciprocal_is_exact};
use super::fields::round_rate;
use super::*;

/// An ekg-like Observation: FHIR's example, with units and a device.
const EKG: &str = r#"{
  "resourceType": "Observation",
  "id": "ekg",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">EKG</div>"},
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "procedure"}]}],
  "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": "131328", "display": "MDC_ECG_ELEC_POTL"}]},
  "subject": {"reference": "Patient/f001", "display": "P. van de Heuvel"},
  "effectiveDateTime": "2015-02-19T09:30:35+01:00",
  "performer": [{"reference": "Practitioner/f005"}],
  "device": {"display": "12 lead EKG Device Metric", "identifier": {"value": "ekg-device-1"}},
  "component": [
    {
      "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": "131329", "display": "MDC_ECG_ELEC_POTL_I"}]},
      "valueSampledData": {
        "origin": {"value": 2048, "unit": "mV", "system": "http://unitsofmeasure.org", "code": "mV"},
        "period": 10, "factor": 1.612, "lowerLimit": -3300, "upperLimit": 3300, "dimensions": 1,
        "data": "2041 2043 2037 -0 2060"
      }
    },
    {
      "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": "131330", "display": "MDC_ECG_ELEC_POTL_II"}]},
      "valueSampledData": {
        "origin": {"value": 2048, "code": "mV"},
        "period": 10, "factor": 1.612, "dimensions": 1,
        "data": "2041 2043 2037 2047 2060.5"
      }
    },
    {
      "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": "131389", "display": "MDC_ECG_ELEC_POTL_III"}], "text": "Lead III"},
      "valueSampledData": {
        "origin": {"value": 2048, "unit": "mV"},
        "period": 10.0, "factor": 1.612, "dimensions": 1,
        "data": "1 2 3 4 5"
      }
    }
  ]
}"#;

/// The correctly rounded double of a decimal text (Rust's parser is).
fn exact(text: &str) -> f64 {
    text.parse().unwrap()
}

#[test]
fn imports_the_ekg_example_with_exact_values() {
    let imported = import(EKG.as_bytes()).unwrap();
    assert_eq!(imported.device_id, "ekg-device-1");
    assert_eq!(imported.leads, ["I", "II", "III"]);
    assert_eq!(imported.units, Units::Millivolts);
    assert_eq!(imported.sample_rate_hz, 100.0);
    assert_eq!(
        imported.started_at,
        Some(datetime!(2015-02-19 09:30:35 +01:00))
    );
    // 1/1.612 is no double: physical values, computed exactly.
    assert_eq!(imported.adc, None);
    let Columns::Values(values) = &imported.columns else {
        panic!("expected values, got {:?}", imported.columns);
    };
    // 2048 + 1.612 × 2041 = 5338.092; 2048 + 1.612 × 2060.5 = 5369.526.
    assert_eq!(
        values["I"][..],
        [
            exact("5338.092"),
            exact("5341.316"),
            exact("5331.644"),
            2048.0,
            exact("5368.72")
        ]
    );
    assert_eq!(values["II"][4], exact("5369.526"));
    assert_eq!(
        values["III"][..],
        [2049.612, 2051.224, 2052.836, 2054.448, 2056.06]
    );
    // Two roundings would not always give these: the exact path is taken.
    assert_ne!(2048.0 + 1.612 * 2043.0, exact("5341.316"));
}

#[test]
fn integer_data_with_an_exact_reciprocal_factor_are_counts() {
    let body = EKG
        .replace(r#""value": 2048"#, r#""value": -5.12"#)
        .replace(r#""factor": 1.612"#, r#""factor": 0.005"#)
        .replace("2060.5", "2060")
        .replace(" -0 ", " 0 ");
    let imported = import(body.as_bytes()).unwrap();
    let cal = Calibration {
        gain: 200.0,
        baseline: 1024,
    };
    let adc = imported.adc.unwrap();
    assert_eq!(adc.len(), 3);
    assert!(adc.values().all(|c| *c == cal), "{adc:?}");
    let Columns::Counts(counts) = &imported.columns else {
        panic!("expected counts");
    };
    assert_eq!(counts["I"][..], [2041, 2043, 2037, 0, 2060]);
    assert_eq!(counts["III"][..], [1, 2, 3, 4, 5]);
}

/// The error of importing `body`, which must fail.
fn error(body: &str) -> FhirError {
    match import(body.as_bytes()) {
        Ok(i) => panic!("imported {i:?}"),
        Err(e) => e,
    }
}

/// EKG with the first occurrence of `from` replaced by `to`.
fn ekg_with(from: &str, to: &str) -> String {
    assert!(EKG.contains(from), "{from}");
    EKG.replacen(from, to, 1)
}

#[test]
fn errors_point_at_the_field_and_say_what_is_allowed() {
    let e = error(&ekg_with(
        r#""resourceType": "Observation""#,
        r#""resourceType": "Patient""#,
    ));
    assert_eq!(e.pointer, "/resourceType");
    assert!(e.message.contains("\"Observation\"") && e.message.contains("\"Patient\""));

    let e = error(&ekg_with(r#""dimensions": 1,"#, r#""dimensions": 2,"#));
    assert_eq!(e.pointer, "/component/0/valueSampledData/dimensions");
    assert!(
        e.message.contains("must be 1") && e.message.contains('2'),
        "{e}"
    );

    let e = error(&EKG.replace("2037 2047 2060.5", "2037 E 2060.5"));
    assert_eq!(e.pointer, "/component/1/valueSampledData/data");
    assert!(e.message.starts_with("sample 3 is \"E\""), "{e}");
    for marker in ["U", "L"] {
        let e = error(&EKG.replace("1 2 3 4 5", &format!("{marker} 2 3 4 5")));
        assert_eq!(e.pointer, "/component/2/valueSampledData/data");
        assert!(
            e.message.starts_with(&format!("sample 0 is \"{marker}\"")),
            "{e}"
        );
    }

    let e = error(&EKG.replace("1 2 3 4 5", "1 2 3 4"));
    assert_eq!(e.pointer, "/component/2/valueSampledData/data");
    assert!(
        e.message.contains("4 samples") && e.message.contains("has 5"),
        "{e}"
    );

    let e = error(&EKG.replace(r#""period": 10.0"#, r#""period": 4"#));
    assert_eq!(e.pointer, "/component/2/valueSampledData/period");
    assert!(
        e.message.contains("4 ms") && e.message.contains("10 ms"),
        "{e}"
    );

    let e = error(&ekg_with(
        r#", "identifier": {"value": "ekg-device-1"}"#,
        "",
    ));
    assert_eq!(e.pointer, "/device");
    assert!(e.message.contains("device.identifier.value"), "{e}");

    let e = error(&ekg_with(r#""code": "mV"}"#, r#""code": "mm[Hg]"}"#));
    assert_eq!(e.pointer, "/component/0/valueSampledData/origin/code");
    assert!(
        e.message.contains("\"mm[Hg]\"") && e.message.contains("\"uV\""),
        "{e}"
    );
    let e = error(&ekg_with(r#""unit": "mV"}"#, r#""unit": "V"}"#));
    assert_eq!(e.pointer, "/component/2/valueSampledData/origin/unit");
    let e = error(&ekg_with(
        r#""value": 2048, "code": "mV""#,
        r#""value": 2048, "code": "uV""#,
    ));
    assert_eq!(e.pointer, "/component/1/valueSampledData/origin");
    assert!(e.message.contains("same unit"), "{e}");

    let e = error(r#"<Observation xmlns="http://hl7.org/fhir"/>"#);
    assert_eq!(e.pointer, "");
    assert!(
        e.message.contains("expected value at line 1 column 1"),
        "{e}"
    );
    let e = error("");
    assert_eq!(e.pointer, "");
    assert!(e.message.contains("EOF"), "{e}");
    let e = error("[]");
    assert_eq!(e.pointer, "");

    let e = error(&ekg_with("131330", "131329"));
    assert_eq!(e.pointer, "/component/1/code");
    assert!(e.message.contains("named twice"), "{e}");

    let e = error(&ekg_with(r#""factor": 1.612"#, r#""factor": "1.612""#));
    assert_eq!(e.pointer, "/component/0/valueSampledData/factor");
    assert!(e.message.contains("JSON number"), "{e}");

    let e = error(&ekg_with(r#""period": 10"#, r#""interval": 10"#));
    assert_eq!(e.pointer, "/component/0/valueSampledData/period");
    assert!(e.message.contains("R5"), "{e}");

    let e = error(&EKG.replace("1 2 3 4 5", "1 2  3 4"));
    assert!(e.message.starts_with("sample 2 is empty"), "{e}");
    let e = error(&EKG.replace("1 2 3 4 5", "1 2 3 4 +5"));
    assert!(e.message.starts_with("sample 4 is \"+5\""), "{e}");

    let e = error(&ekg_with("2015-02-19T09:30:35+01:00", "2015-02"));
    assert_eq!(e.pointer, "/effectiveDateTime");

    // A wrong type deep inside: serde's error, at its place.
    let e = error(&ekg_with(r#""text": "Lead III""#, r#""text": 3"#));
    assert_eq!(e.pointer, "/component/2/code/text");
}

#[test]
fn values_beyond_a_double_are_refused_with_their_position() {
    let e = error(&EKG.replace("1 2 3 4 5", "1 2 1e400 4 5"));
    assert_eq!(e.pointer, "/component/2/valueSampledData/data");
    assert!(e.message.starts_with("sample 2 (\"1e400\") is inf"), "{e}");
    let e = error(&ekg_with(
        r#""value": 2048, "unit": "mV", "system""#,
        r#""value": -1e400, "unit": "mV", "system""#,
    ));
    assert_eq!(e.pointer, "/component/0/valueSampledData/origin/value");
}

/// Inputs at every edge: none may panic, whatever it returns.
#[test]
fn nothing_panics_at_the_edges() {
    let numbers = [
        "0",
        "-0",
        "1e400",
        "-1e400",
        "1e-400",
        "170141183460469231731687303715884105728",
        "99999999999999999999999999999999999999999999",
        "0.000000000000000000000000000000000000000000001",
        "1E+99999999999999999999",
        "1e-99999999999999999999",
        "2147483648",
        "-2147483649",
        "18446744073709551616",
        "5e-324",
        "1.7976931348623157e308",
        "\"x\"",
        "null",
        "true",
        "[]",
        "{}",
    ];
    let data = [
        "",
        " ",
        "-0",
        "-2147483648 2147483647",
        "2147483648",
        "1e999999999999",
        "0.0000000000000000000000000000000000000001",
        "99999999999999999999999999999999999999999",
        "E",
        "\u{0}",
        "１",
    ];
    for origin in numbers {
        for factor in numbers {
            for d in data {
                let body = EKG
                    .replacen(r#""value": 2048"#, &format!(r#""value": {origin}"#), 1)
                    .replacen(r#""factor": 1.612"#, &format!(r#""factor": {factor}"#), 1)
                    .replacen("2041 2043 2037 -0 2060", d, 1);
                let _ = import(body.as_bytes());
            }
        }
        for field in ["period", "dimensions"] {
            let body = EKG.replacen(
                &format!(r#""{field}": "#),
                &format!(r#""{field}": {origin}, "x": "#),
                1,
            );
            let _ = import(body.as_bytes());
        }
    }
    // Deep nesting: ignored fields are skipped without recursion, and
    // nested extensions stop at serde_json's depth limit.
    let deep = format!(
        r#"{{"resourceType":"Observation","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(import(deep.as_bytes()).is_err());
    let nested = format!(
        r#"{{"resourceType":"Observation","extension":[{}{}]}}"#,
        r#"{"extension":["#.repeat(10_000),
        "]}".repeat(10_000)
    );
    assert!(import(nested.as_bytes()).is_err());
}

proptest! {
    /// Arbitrary bytes, and arbitrary text in the data, never panic.
    #[test]
    fn arbitrary_input_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        data in "[-0-9eE.+ ULx]{0,40}",
    ) {
        let _ = import(&bytes);
        let _ = import(EKG.replacen("2041 2043 2037 -0 2060", &data, 1).as_bytes());
    }
}

#[test]
fn adc_factor_is_the_exact_reciprocal_or_none() {
    assert_eq!(adc_factor(200.0).as_deref(), Some("0.005"));
    assert_eq!(adc_factor(1000.0).as_deref(), Some("0.001"));
    assert_eq!(adc_factor(1024.0).as_deref(), Some("0.0009765625"));
    assert_eq!(adc_factor(0.5).as_deref(), Some("2"));
    assert_eq!(adc_factor(1.0).as_deref(), Some("1"));
    assert_eq!(adc_factor(0.004).as_deref(), None, "0.004 is no double");
    for gain in [3.0, 0.62, 0.1, 7.0, 0.0, -200.0, f64::NAN, f64::INFINITY] {
        assert_eq!(adc_factor(gain), None, "{gain}");
    }
    // Every 2^i × 5^j has a finite decimal reciprocal, and it is exact.
    for i in -40..40 {
        for j in 0..=22 {
            let gain = 2f64.powi(i) * 5f64.powi(j);
            let text = adc_factor(gain).unwrap_or_else(|| panic!("2^{i} 5^{j}"));
            let (m, e) = Decimal::parse(&text).unwrap().exact.unwrap();
            assert!(
                reciprocal_is_exact(m.unsigned_abs(), e, gain),
                "{gain}: {text}"
            );
            assert!(!text.contains('e') && !text.ends_with(".0"), "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), 1.0 / gain, "{gain}");
        }
    }
}

#[test]
fn every_exact_factor_gives_back_its_gain_and_baseline() {
    // 1.0 / (the double nearest the factor) is often a neighbour of the
    // gain (e.g. 2^-40 × 5^5): the exact one must still be found.
    let mut neighbours = 0;
    for i in -40..40 {
        for j in 0..=22 {
            let gain = 2f64.powi(i) * 5f64.powi(j);
            let factor = adc_factor(gain).unwrap();
            let factor = Decimal::parse(&factor).unwrap();
            neighbours += usize::from(1.0 / factor.value != gain);
            for baseline in [0, 1024, -7, i32::MIN, i32::MAX] {
                let (m, e) = factor.exact.unwrap();
                let origin = decimal::plain(m * -i128::from(baseline), i64::from(e));
                let origin = Decimal::parse(&origin).unwrap();
                assert_eq!(
                    decimal::calibration(&origin, &factor),
                    Some(Calibration { gain, baseline }),
                    "2^{i} 5^{j}"
                );
            }
        }
    }
    assert!(neighbours > 0, "no case needs the neighbours");
    // Not counts: a baseline that is no integer or does not fit.
    let calibration = |o: &str, f: &str| {
        decimal::calibration(&Decimal::parse(o).unwrap(), &Decimal::parse(f).unwrap())
    };
    assert_eq!(calibration("-5.1234", "0.005"), None);
    assert_eq!(calibration("-10737418.24", "0.005"), None);
    assert_eq!(
        calibration("10737418.24", "0.005").map(|c| c.baseline),
        Some(i32::MIN)
    );
    assert_eq!(calibration("0", "-0.005"), None);
    assert_eq!(calibration("0", "0"), None);
}

#[test]
fn reciprocal_exactness_is_decided_in_integers() {
    let check = |factor: &str, g: f64| {
        let (m, e) = Decimal::parse(factor).unwrap().exact.unwrap();
        reciprocal_is_exact(m.unsigned_abs(), e, g)
    };
    assert!(check("0.005", 200.0));
    assert!(check("2", 0.5));
    assert!(check("1", 1.0));
    assert!(check("0.0009765625", 1024.0));
    assert!(!check("0.005", 200.00000000000003));
    assert!(!check("0.0050", 199.99999999999997));
    assert!(!check("0.3333333333333333", 3.0));
    // The decimal 0.1 is the reciprocal of 10; the double nearest 0.1 is
    // not a tenth, so no decimal factor 10 is its reciprocal.
    assert!(check("0.1", 10.0));
    assert!(!check("10", 0.1));
}

#[test]
fn a_period_of_a_round_rate_gives_the_round_rate() {
    assert_eq!(
        round_rate(1000.0 / 2.7777777777777777, 2.7777777777777777),
        360.0
    );
    // 120 Hz is a period of 8.333333333333334 ms, and 1000 over that is
    // 119.99999999999999 Hz: the rule gives back 120.
    let period = 1000.0 / 120.0;
    assert_ne!(1000.0 / period, 120.0, "the rule is needed");
    assert_eq!(round_rate(1000.0 / period, period), 120.0);
    assert_eq!(round_rate(1000.0 / 4.0, 4.0), 250.0);
    // 1000/3 Hz has no 6-decimal rate giving back 3 ms.
    assert_eq!(round_rate(1000.0 / 3.0, 3.0), 1000.0 / 3.0);
    let body = EKG
        .replace(r#""period": 10.0"#, r#""period": 2.7777777777777777"#)
        .replace(r#""period": 10"#, r#""period": 2.7777777777777777"#);
    assert_eq!(import(body.as_bytes()).unwrap().sample_rate_hz, 360.0);
}

#[test]
fn the_lead_table_reads_both_ways() {
    let expected = [
        ("I", 131329),
        ("II", 131330),
        ("III", 131389),
        ("aVR", 131390),
        ("aVL", 131391),
        ("aVF", 131392),
        ("V1", 131331),
        ("V2", 131332),
        ("V3", 131333),
        ("V4", 131334),
        ("V5", 131335),
        ("V6", 131336),
        ("V7", 131337),
        ("V2R", 131338),
        ("V7R", 131343),
        ("X", 131344),
        ("Y", 131345),
        ("Z", 131346),
    ];
    for (lead, code) in expected {
        assert_eq!(lead_code(lead).map(|c| c.0), Some(code), "{lead}");
        assert_eq!(lead_of_code(code), Some(lead));
    }
    assert_eq!(lead_code("II"), Some((131330, "MDC_ECG_ELEC_POTL_II")));
    assert_eq!(lead_code("aVR"), Some((131390, "MDC_ECG_ELEC_POTL_AVR")));
    assert_eq!(lead_code("AVR"), lead_code("aVR"));
    assert_eq!(lead_code("avf"), lead_code("aVF"));
    assert_eq!(lead_code("v1"), lead_code("V1"));
    assert_eq!(lead_code("MLII"), None);
    assert_eq!(lead_code(""), None);
    assert_eq!(lead_of_code(MDC_ECG_ELEC_POTL), None);
    assert_eq!(lead_of_code(0), None);
    assert_eq!(lead_of_code(u32::MAX), None);
    for lead in standard_leads() {
        let (code, display) = lead_code(lead).unwrap();
        assert_eq!(lead_of_code(code), Some(lead));
        assert_eq!(
            display,
            format!("MDC_ECG_ELEC_POTL_{}", lead.to_uppercase())
        );
    }
}

#[test]
fn a_sample_rate_extension_that_contradicts_the_period_is_refused() {
    let body = ekg_with(
        r#""id": "ekg","#,
        &format!(
            r#""id": "ekg", "extension": [{{"url": "{SAMPLE_RATE_URL}", "valueDecimal": 250}}],"#
        ),
    );
    let e = error(&body);
    assert_eq!(e.pointer, "/extension/0/valueDecimal");
    assert!(e.message.contains("250 Hz contradicts"), "{e}");
    let body = ekg_with(
        r#""id": "ekg","#,
        &format!(
            r#""id": "ekg", "extension": [{{"url": "{SAMPLE_RATE_URL}", "valueDecimal": 100.0}}],"#
        ),
    );
    assert_eq!(import(body.as_bytes()).unwrap().sample_rate_hz, 100.0);
}

#[test]
fn the_adc_extension_is_the_calibration_of_integer_data() {
    // 1.612 is no reciprocal of a double; the extension says 1/1.612 is
    // meant as gain 0.62 (rounded, as a writer of an inexact gain does).
    let adc = format!(
        r#""valueSampledData": {{"extension": [{{"url": "{ADC_URL}", "extension": [{{"url": "baseline", "valueInteger": -2048}}, {{"url": "gain", "valueDecimal": 0.62}}]}}],"#
    );
    let body = EKG
        .replace(r#""valueSampledData": {"#, &adc)
        .replace(" -0 ", " 0 ")
        .replace("2060.5", "2060");
    let imported = import(body.as_bytes()).unwrap();
    let cal = Calibration {
        gain: 0.62,
        baseline: -2048,
    };
    assert!(imported.adc.unwrap().values().all(|c| *c == cal));
    // Non-integer data: the extension is ignored, the values are
    // origin + factor × data.
    let imported = import(EKG.replace(r#""valueSampledData": {"#, &adc).as_bytes()).unwrap();
    assert_eq!(imported.adc, None);
    let e = error(&body.replacen(
        r#""valueInteger": -2048"#,
        r#""valueInteger": 2147483648"#,
        1,
    ));
    assert_eq!(
        e.pointer,
        "/component/0/valueSampledData/extension/0/extension/0/valueInteger"
    );
    let e = error(&body.replacen(r#""valueDecimal": 0.62"#, r#""valueDecimal": 0"#, 1));
    assert_eq!(
        e.pointer,
        "/component/0/valueSampledData/extension/0/extension/1/valueDecimal"
    );
}

mod export;
