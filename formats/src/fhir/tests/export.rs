//! Export: what the writer writes is valid R4 JSON, and import gives
//! back the same bits.

use ecg_schemas::samples::Columns;
use ecg_schemas::{Calibration, Units};
use proptest::prelude::*;
use serde_json::Value;
use time::macros::datetime;

use super::exact;
use crate::fhir::*;

/// A lead of a written Observation, and what its samples are.
#[derive(Debug, Clone)]
enum Samples {
    Adc(Calibration, Vec<i32>),
    Scaled(u8, Vec<i64>),
    Text(Vec<f64>),
}

fn head<'a>(device_id: &'a str, rate: f64, next: Option<&'a str>) -> Head<'a> {
    Head {
        id: "6f1c7e8e-3b7a-4c1e-9a51-0b8f2f0e1d2c",
        status: "final",
        device_id,
        start: datetime!(2024-03-01 12:00:00.123456789 UTC),
        end: datetime!(2024-03-01 12:00:10 UTC),
        sample_rate_hz: rate,
        next,
    }
}

/// Writes an Observation of `leads` as a caller streaming it would.
fn write(head: &Head<'_>, units: Units, leads: &[(String, Samples)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_head(&mut out, head);
    for (i, (name, samples)) in leads.iter().enumerate() {
        let form = match samples {
            Samples::Adc(c, _) => DataForm::Adc {
                gain: c.gain,
                baseline: c.baseline,
            },
            Samples::Scaled(scale, _) => DataForm::Scaled { scale: *scale },
            Samples::Text(_) => DataForm::Text,
        };
        write_component_start(&mut out, i == 0, name, units, head.sample_rate_hz, &form);
        match samples {
            Samples::Adc(_, counts) => {
                for (k, &c) in counts.iter().enumerate() {
                    write_count(&mut out, k == 0, i64::from(c));
                }
            }
            Samples::Scaled(_, ns) => {
                for (k, &n) in ns.iter().enumerate() {
                    write_count(&mut out, k == 0, n);
                }
            }
            Samples::Text(values) => {
                for (k, &v) in values.iter().enumerate() {
                    write_value(&mut out, k == 0, v);
                }
            }
        }
        write_component_end(&mut out);
    }
    write_tail(&mut out);
    out
}

/// The physical values a lead stands for, as correctly rounded doubles.
fn physical(samples: &Samples) -> Vec<f64> {
    match samples {
        Samples::Adc(c, counts) => counts.iter().map(|&a| c.physical(a)).collect(),
        Samples::Scaled(scale, ns) => ns.iter().map(|n| exact(&format!("{n}e-{scale}"))).collect(),
        Samples::Text(values) => values.clone(),
    }
}

fn gain() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![200.0, 1000.0, 3.0, 0.62, 1.0, 0.5, 1024.0, 1e9, 2.5]),
        1e-3..1e6f64,
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            -0.0,
            0.0,
            1e300,
            -1e300,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            0.1,
            1.0,
            -2.5,
        ]),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        -10.0..10.0f64,
    ]
}

fn samples(n: usize) -> impl Strategy<Value = Samples> {
    prop_oneof![
        (gain(), any::<i32>(), prop::collection::vec(any::<i32>(), n)).prop_map(
            |(gain, baseline, counts)| Samples::Adc(Calibration { gain, baseline }, counts)
        ),
        (
            0u8..=25,
            prop::collection::vec(
                prop_oneof![
                    any::<i32>().prop_map(i64::from),
                    -(1i64 << 53)..(1i64 << 53)
                ],
                n
            )
        )
            .prop_map(|(scale, ns)| Samples::Scaled(scale, ns)),
        prop::collection::vec(value(), n).prop_map(Samples::Text),
    ]
}

fn lead_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["I", "II", "III", "aVR", "V1", "V6", "X", "avr"])
            .prop_map(str::to_string),
        any::<String>(),
        Just("quote\" back\\slash\n\u{0}".to_string()),
    ]
}

fn document() -> impl Strategy<Value = (f64, Units, Vec<(String, Samples)>)> {
    let rate = prop_oneof![
        prop::sample::select(vec![360.0, 500.0, 250.0, 1000.0 / 3.0, 128.0, 0.1]),
        1e-2..1e5f64,
    ];
    let units = prop::sample::select(vec![Units::Millivolts, Units::Microvolts]);
    (rate, units, 1usize..4, 0usize..12).prop_flat_map(|(rate, units, leads, n)| {
        // Distinct names, as an ECG's leads are.
        let leads = prop::collection::vec((lead_name(), samples(n)), leads).prop_filter(
            "distinct lead names",
            |leads| {
                leads
                    .iter()
                    .enumerate()
                    .all(|(i, (a, _))| leads[..i].iter().all(|(b, _)| a != b))
            },
        );
        (Just(rate), Just(units), leads)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// What is written is read back bit for bit: counts with their exact
    /// calibration, or values.
    #[test]
    fn export_then_import_round_trips_exactly(
        (rate, units, leads) in document(),
        device_id in any::<String>(),
    ) {
        let head = head(&device_id, rate, Some("https://ecg.example/next?page=\"2\""));
        let body = write(&head, units, &leads);
        let imported = import(&body).map_err(|e| {
            TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&body)))
        })?;
        prop_assert_eq!(&imported.device_id, &device_id);
        prop_assert_eq!(imported.sample_rate_hz.to_bits(), rate.to_bits());
        prop_assert_eq!(imported.units, units);
        prop_assert_eq!(imported.started_at, Some(head.start));
        let names: Vec<&String> = leads.iter().map(|(n, _)| n).collect();
        prop_assert_eq!(imported.leads.iter().collect::<Vec<_>>(), names);
        let all_adc = leads.iter().all(|(_, s)| matches!(s, Samples::Adc(..)));
        let some_text = leads
            .iter()
            .any(|(_, s)| matches!(s, Samples::Text(v) if !v.is_empty()));
        match (&imported.columns, &imported.adc) {
            (Columns::Counts(counts), Some(adc)) => {
                prop_assert!(!some_text);
                for (name, samples) in &leads {
                    let (c, got) = (adc[name], &counts[name][..]);
                    match samples {
                        Samples::Adc(cal, written) => {
                            prop_assert_eq!(c.gain.to_bits(), cal.gain.to_bits());
                            prop_assert_eq!(c.baseline, cal.baseline);
                            prop_assert_eq!(got, &written[..]);
                        }
                        // Scaled integers are counts when 10^scale is a
                        // double: the same values, as (n - 0) / 10^scale.
                        Samples::Scaled(..) | Samples::Text(_) => {
                            let back: Vec<u64> =
                                got.iter().map(|&a| c.physical(a).to_bits()).collect();
                            let want: Vec<u64> =
                                physical(samples).iter().map(|v| v.to_bits()).collect();
                            prop_assert_eq!(back, want, "{}", name);
                        }
                    }
                }
            }
            (Columns::Values(values), None) => {
                prop_assert!(!all_adc, "Adc leads only must be counts");
                for (name, samples) in &leads {
                    let got: Vec<u64> = values[name].iter().map(|v| v.to_bits()).collect();
                    let want: Vec<u64> = physical(samples).iter().map(|v| v.to_bits()).collect();
                    prop_assert_eq!(got, want, "{}", name);
                }
            }
            (columns, adc) => prop_assert!(false, "{columns:?} with {adc:?}"),
        }
    }

    /// Without the `adc` extension, an exact factor still gives the exact
    /// calibration (derived from origin and factor), and an inexact one
    /// gives values within a few ulp of the physical values.
    #[test]
    fn adc_leads_without_the_extension_are_exact_or_documented_close(
        gain in gain(),
        baseline in any::<i32>(),
        counts in prop::collection::vec(any::<i32>(), 1..10),
    ) {
        let cal = Calibration { gain, baseline };
        let leads = vec![("II".to_string(), Samples::Adc(cal, counts.clone()))];
        let body = String::from_utf8(write(&head("d", 500.0, None), Units::Millivolts, &leads)).unwrap();
        let extension = format!(
            r#""extension":[{{"url":"{ADC_URL}","extension":[{{"url":"gain","valueDecimal":{}}},{{"url":"baseline","valueInteger":{baseline}}}]}}],"#,
            ryu::Buffer::new().format_finite(gain)
        );
        prop_assert!(body.contains(&extension));
        let imported = import(body.replacen(&extension, "", 1).as_bytes()).unwrap();
        match (adc_factor(gain), &imported.columns) {
            (Some(_), Columns::Counts(got)) => {
                let c = imported.adc.unwrap()["II"];
                prop_assert_eq!(c.gain.to_bits(), gain.to_bits());
                prop_assert_eq!(c.baseline, baseline);
                prop_assert_eq!(&got["II"][..], &counts[..]);
            }
            (None, Columns::Values(values)) => {
                let (origin, factor) = (-f64::from(baseline) / gain, 1.0 / gain);
                for (&v, &a) in values["II"].iter().zip(&counts) {
                    let want = cal.physical(a);
                    let scale = origin.abs() + (factor * f64::from(a)).abs() + want.abs();
                    prop_assert!((v - want).abs() <= 4.0 * f64::EPSILON * scale, "{v} {want}");
                }
            }
            (factor, columns) => prop_assert!(false, "{factor:?} {columns:?}"),
        }
    }
}

#[test]
fn the_written_observation_is_valid_json_with_the_r4_fields() {
    let leads = vec![
        (
            "II".to_string(),
            Samples::Adc(
                Calibration {
                    gain: 200.0,
                    baseline: 1024,
                },
                vec![1024, 1224, -5],
            ),
        ),
        (
            "lead \"x\"".to_string(),
            Samples::Text(vec![-0.0, 1e300, 0.1]),
        ),
        ("V1".to_string(), Samples::Scaled(3, vec![1, -2, 3])),
        (
            "III".to_string(),
            Samples::Adc(
                Calibration {
                    gain: 3.0,
                    baseline: -7,
                },
                vec![0, 1, 2],
            ),
        ),
    ];
    let head = head(
        "dev\"ice\\\u{1}",
        360.0,
        Some("https://x/ecgs/1/fhir?page=2"),
    );
    let body = write(&head, Units::Microvolts, &leads);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["resourceType"], "Observation");
    assert_eq!(doc["id"], head.id);
    assert_eq!(doc["identifier"][0]["system"], "urn:ecg-stream:ecg");
    assert_eq!(doc["identifier"][0]["value"], head.id);
    assert_eq!(doc["status"], "final");
    assert_eq!(doc["category"][0]["coding"][0]["code"], "procedure");
    let coding = &doc["code"]["coding"];
    assert_eq!(coding[0]["system"], "urn:oid:2.16.840.1.113883.6.24");
    assert_eq!(coding[0]["code"], "131328");
    assert_eq!(coding[0]["display"], "MDC_ECG_ELEC_POTL");
    assert_eq!(coding[1]["system"], "http://loinc.org");
    assert_eq!(coding[1]["code"], "11524-6");
    assert_eq!(coding[1]["display"], "EKG study");
    for reference in ["subject", "device"] {
        assert_eq!(doc[reference]["type"], "Device");
        assert_eq!(
            doc[reference]["identifier"]["system"],
            "urn:ecg-stream:device"
        );
        assert_eq!(doc[reference]["identifier"]["value"], head.device_id);
    }
    assert_eq!(
        doc["effectivePeriod"]["start"],
        "2024-03-01T12:00:00.123456789Z"
    );
    assert_eq!(doc["effectivePeriod"]["end"], "2024-03-01T12:00:10Z");
    assert_eq!(doc["extension"][0]["url"], SAMPLE_RATE_URL);
    assert_eq!(doc["extension"][0]["valueDecimal"], 360.0);
    assert_eq!(doc["extension"][1]["url"], NEXT_PAGE_URL);
    assert_eq!(
        doc["extension"][1]["valueUrl"],
        "https://x/ecgs/1/fhir?page=2"
    );

    let c = &doc["component"];
    assert_eq!(c.as_array().unwrap().len(), 4);
    assert_eq!(c[0]["code"]["coding"][0]["code"], "131330");
    assert_eq!(c[0]["code"]["coding"][0]["display"], "MDC_ECG_ELEC_POTL_II");
    assert_eq!(c[0]["code"]["text"], "II");
    assert!(c[1]["code"].get("coding").is_none());
    assert_eq!(c[1]["code"]["text"], "lead \"x\"");
    let sd = &c[0]["valueSampledData"];
    assert_eq!(sd["origin"]["unit"], "uV");
    assert_eq!(sd["origin"]["system"], "http://unitsofmeasure.org");
    assert_eq!(sd["origin"]["code"], "uV");
    assert_eq!(sd["dimensions"], 1);
    assert_eq!(sd["data"], "1024 1224 -5");
    assert_eq!(sd["extension"][0]["url"], ADC_URL);
    assert_eq!(sd["extension"][0]["extension"][1]["valueInteger"], 1024);
    // The numbers' texts, as written.
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.contains(r#""origin":{"value":-5.12,"#), "{text}");
    assert!(
        text.contains(r#""period":2.7777777777777777,"factor":0.005,"#),
        "{text}"
    );
    assert!(
        text.contains(r#""factor":0.001,"dimensions":1,"data":"1 -2 3""#),
        "{text}"
    );
    assert!(text.contains(r#""data":"-0.0 1e300 0.1""#), "{text}");
    assert!(
        text.contains(r#""origin":{"value":2.3333333333333335,"#),
        "{text}"
    );
    assert!(text.contains(r#""factor":0.3333333333333333,"#), "{text}");

    let imported = import(&body).unwrap();
    assert_eq!(imported.device_id, head.device_id);
    assert_eq!(imported.sample_rate_hz, 360.0);
    assert_eq!(imported.leads, ["II", "lead \"x\"", "V1", "III"]);
    let Columns::Values(values) = imported.columns else {
        panic!("a Text lead makes values");
    };
    assert_eq!(values["II"][..], [0.0, 1.0, -5.145]);
    assert_eq!(values["lead \"x\""][0].to_bits(), (-0.0f64).to_bits());
    assert_eq!(values["V1"][..], [0.001, -0.002, 0.003]);
    assert_eq!(values["III"][..], [7.0 / 3.0, 8.0 / 3.0, 3.0]);
}

#[test]
fn counts_are_written_as_integers_and_non_finite_values_as_e() {
    let mut out = Vec::new();
    for (k, n) in [0, -1, i64::MIN, i64::MAX, 42].into_iter().enumerate() {
        write_count(&mut out, k == 0, n);
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0 -1 -9223372036854775808 9223372036854775807 42"
    );
    let mut out = Vec::new();
    for (k, v) in [f64::NAN, 1.5, f64::NEG_INFINITY, -0.0, 5e-324, f64::MAX]
        .into_iter()
        .enumerate()
    {
        write_value(&mut out, k == 0, v);
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "E 1.5 E -0.0 5e-324 1.7976931348623157e308"
    );
}
