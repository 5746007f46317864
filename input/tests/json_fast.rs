//! The fast chunk parser agrees with serde on everything it accepts, and
//! gives up (leaving serde to report the error) on everything serde refuses.
//! Samples are compared bit for bit; the bodies cover serialised requests
//! and hand-made number texts of every shape the parser tells apart.

use std::collections::BTreeMap;

use ecg_input::json::{decode, fast};
use ecg_schemas::api::ChunkRequest;
use proptest::prelude::*;

fn lead() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,6}"
}

fn sample() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        -10.0f64..10.0,
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        (-100_000i32..100_000).prop_map(f64::from),
    ]
}

fn request() -> impl Strategy<Value = ChunkRequest> {
    (
        any::<u32>(),
        prop::collection::btree_map(lead(), prop::collection::vec(sample(), 0..40), 0..5),
        any::<bool>(),
    )
        .prop_map(|(seq, samples, r#final)| ChunkRequest {
            seq,
            samples,
            r#final,
        })
}

fn same(a: &ChunkRequest, b: &ChunkRequest) -> bool {
    let bits = |m: &BTreeMap<String, Vec<f64>>| -> Vec<(String, Vec<u64>)> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|x| x.to_bits()).collect()))
            .collect()
    };
    a.seq == b.seq && a.r#final == b.r#final && bits(&a.samples) == bits(&b.samples)
}

/// A valid JSON number as text, of every shape the parser tells apart:
/// short decimals (one word), longer ones (two words), 15- to 20-digit
/// mantissas, exponents; at every length, so that numbers straddle the 8-
/// and 16-byte windows of the fast path.
fn number_text() -> impl Strategy<Value = String> {
    let int = prop_oneof![
        4 => Just("0".to_string()),
        8 => "[1-9][0-9]{0,2}",
        2 => "[1-9][0-9]{3,7}",
        2 => "[1-9][0-9]{8,19}",
    ];
    let frac = prop_oneof![
        3 => Just(String::new()),
        8 => "\\.[0-9]{1,8}",
        2 => "\\.[0-9]{9,20}",
    ];
    let exp = prop_oneof![12 => Just(String::new()), 3 => "[eE][+-]?[0-9]{1,2}"];
    ("-?", int, frac, exp).prop_map(|(sign, i, f, e)| format!("{sign}{i}{f}{e}"))
}

/// Number-like texts JSON refuses.
fn near_miss() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?0[0-9]{1,3}(\\.[0-9]{1,3})?",
        "-?\\.[0-9]{1,6}",
        "-?[0-9]{1,6}\\.",
        "-?[0-9]{1,3}\\.[0-9]{1,3}[.eE+-][0-9]{0,3}",
        // Near the one-digit-before-the-point shortcut of the fast path.
        "-?[0-9][.0-9]{1,7}",
        "-?[0-9][^0-9.,\\]\\\\\"][0-9]{1,6}",
        "[+-]{1,2}[0-9]{1,6}",
        "-|-?[0-9]{1,3}[eE][+-]?",
        "Infinity|NaN|0x1F|1_000",
    ]
}

/// Whitespace between tokens: usually none (the fast path), sometimes any
/// of JSON's four.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just(String::new()), 1 => "[ \t\n\r]{1,3}"]
}

/// A chunk body written by hand: number texts with whitespace around every
/// token, in a quarter of the bodies one number replaced by a near miss, and
/// `final` before or after the samples (so that the last number is either
/// far from the end of the body or within a few bytes of it).
fn body_of_number_texts() -> impl Strategy<Value = String> {
    let array = prop::collection::vec((ws(), number_text(), ws()), 0..24);
    (
        any::<u32>(),
        prop::collection::btree_map(lead(), (ws(), array, ws()), 1..4),
        prop::option::weighted(0.25, (any::<prop::sample::Index>(), near_miss())),
        prop::option::of(any::<bool>()),
        any::<bool>(),
        ws(),
    )
        .prop_map(|(seq, mut leads, miss, is_final, final_first, w)| {
            if let Some((at, text)) = miss {
                let values: Vec<_> = leads.values_mut().flat_map(|(_, v, _)| v).collect();
                if !values.is_empty() {
                    let n = at.index(values.len());
                    values.into_iter().nth(n).unwrap().1 = text;
                }
            }
            let samples: Vec<String> = leads
                .iter()
                .map(|(lead, (a, values, b))| {
                    let items: Vec<String> = values
                        .iter()
                        .map(|(x, n, y)| format!("{x}{n}{y}"))
                        .collect();
                    format!("{w}\"{lead}\"{w}:{a}[{}]{b}", items.join(","))
                })
                .collect();
            let samples = format!("\"samples\"{w}:{w}{{{}}}", samples.join(","));
            let seq = format!("\"seq\"{w}:{w}{seq}");
            let fields = match (is_final, final_first) {
                (None, _) => vec![seq, samples],
                (Some(f), true) => vec![format!("\"final\":{w}{f}"), seq, samples],
                (Some(f), false) => vec![seq, samples, format!("\"final\":{f}{w}")],
            };
            format!("{w}{{{w}{}{w}}}{w}", fields.join(&format!("{w},{w}")))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn fast_path_equals_serde_on_serialised_requests(req in request(), pretty in any::<bool>()) {
        let body = if pretty { serde_json::to_vec_pretty(&req) } else { serde_json::to_vec(&req) }.unwrap();
        let fast = fast::chunk(&body);
        prop_assert!(fast.is_some(), "fast path gave up on {}", String::from_utf8_lossy(&body));
        let fast = fast.unwrap();
        prop_assert!(same(&fast, &req), "{fast:?} != {req:?}");
        prop_assert!(same(&fast, &decode::<ChunkRequest>(&body).unwrap()));
    }

    #[test]
    fn fast_path_equals_serde_on_number_texts(body in body_of_number_texts()) {
        let slow = decode::<ChunkRequest>(body.as_bytes());
        match fast::chunk(body.as_bytes()) {
            Some(fast) => {
                prop_assert!(slow.is_ok(), "fast accepted what serde refuses: {body}");
                let slow = slow.unwrap();
                prop_assert!(same(&fast, &slow), "{body}\n fast  {fast:?}\n serde {slow:?}");
            }
            // Nothing in these bodies needs serde (no escapes, no unknown
            // fields): the fast path gives up only on invalid ones.
            None => prop_assert!(slow.is_err(), "fast path gave up on a valid body: {body}"),
        }
    }

    #[test]
    fn fast_path_never_accepts_what_serde_refuses(req in request(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut body = serde_json::to_vec(&req).unwrap();
        let at = cut.index(body.len());
        body[at] = byte;
        if let Some(fast) = fast::chunk(&body) {
            let slow = decode::<ChunkRequest>(&body);
            prop_assert!(slow.is_ok(), "fast accepted what serde refuses: {}", String::from_utf8_lossy(&body));
            prop_assert!(same(&fast, &slow.unwrap()));
        }
    }
}

#[test]
fn numbers_outside_json_grammar_fall_back_to_serde_errors() {
    for bad in [
        "[.5]", "[1.]", "[+1]", "[01]", "[inf]", "[NaN]", "[1e400]", "[1,]", "[-]",
    ] {
        let body = format!(r#"{{"seq":0,"samples":{{"I":{bad}}}}}"#);
        assert!(fast::chunk(body.as_bytes()).is_none(), "{bad}");
        assert!(decode::<ChunkRequest>(body.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn numbers_convert_exactly_like_serde() {
    for n in [
        "-0",
        "-0.0",
        "0",
        "1e22",
        "1e23",
        "123456789012345",
        "1234567890123456789",
        "0.000000000000000000000000001",
        "4.9e-324",
        "1.7976931348623157e308",
        "2.2250738585072011e-308",
        "0.1",
        "-3.14159",
        "1E5",
        "1e-22",
        "9007199254740993",
        "1.00000000000000011102230246251565",
    ] {
        let body = format!(r#"{{"seq":0,"samples":{{"I":[{n}]}}}}"#);
        let fast = fast::chunk(body.as_bytes()).expect(n).samples["I"][0];
        let slow = decode::<ChunkRequest>(body.as_bytes()).unwrap().samples["I"][0];
        assert_eq!(
            fast.to_bits(),
            slow.to_bits(),
            "{n}: fast {fast:e}, serde {slow:e}"
        );
    }
}

#[test]
fn unusual_but_valid_bodies_still_decode() {
    // Escapes in keys go the slow way and succeed.
    let body = br#"{ "final" : true , "samples" : { "\u0049" : [ 1 , -0.0 ] } , "seq" : 3 }"#;
    assert!(fast::chunk(body).is_none());
    let req = ecg_input::json::decode_chunk(body).unwrap();
    assert_eq!((req.seq, req.r#final), (3, true));
    assert!(req.samples["I"][1].is_sign_negative());
}

#[test]
fn short_leads_after_a_long_one_do_not_keep_its_capacity() {
    // The first lead's length is reserved for the others; a body whose
    // other leads are short (invalid, but refused only by validation) must
    // not hold the first lead's memory once per lead.
    let first = vec!["0"; 10_000].join(",");
    let mut body = format!(r#"{{"seq":0,"samples":{{"A":[{first}]"#);
    for i in 0..1_000 {
        body.push_str(&format!(r#","L{i}":[1.5]"#));
    }
    body.push_str("}}");
    let req = fast::chunk(body.as_bytes()).expect("the fast path takes it");
    let values: usize = req.samples.values().map(Vec::len).sum();
    let reserved: usize = req.samples.values().map(Vec::capacity).sum();
    assert_eq!(values, 11_000);
    assert!(
        reserved <= 2 * values,
        "{reserved} reserved for {values} values"
    );
}

#[test]
fn numbers_at_window_edges_convert_exactly_like_serde() {
    // Lengths around the 8- and 16-byte windows of the fast path, with and
    // without a sign, and as the last bytes of the body (`]}}` follows).
    let texts = [
        "0",
        "-0",
        "-0.0",
        "7",
        "0.5",
        "-0.5",
        "1.0732",
        "-1.07321",
        "1.07321",
        "0.045321",
        "-0.045321",
        "12345678",
        "-1234567",
        "-12345678",
        "123456789",
        "0.1234567",
        "-0.1234567",
        "1234567.1234567",
        "-123456.1234567",
        "1234567.12345678",
        "0.00000001",
        "99999999.5",
        "1e5",
        "-1.5E-3",
        "123456789012345678",
        "0.000000000000000001",
    ];
    for (i, n) in texts.iter().enumerate() {
        // Shift the number through every offset modulo 16.
        let pad = " ".repeat(i % 16);
        for body in [
            format!(r#"{{"seq":0,"samples":{{"I":[{pad}{n},{n}]}}}}"#),
            format!(r#"{{"seq":0,"samples":{{"I":[{n},{n}]}},"final":true}}"#),
        ] {
            let fast = fast::chunk(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            let slow = decode::<ChunkRequest>(body.as_bytes()).unwrap();
            assert!(same(&fast, &slow), "{body}: {fast:?} != {slow:?}");
        }
    }
}
