//! The fast chunk parser agrees with serde on everything it accepts, and
//! gives up (leaving serde to report the error) on everything serde refuses.

use std::collections::BTreeMap;

use ecg_schemas::api::ChunkRequest;
use ecg_schemas::json::{decode, fast};
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
    let req = ecg_schemas::json::decode_chunk(body).unwrap();
    assert_eq!((req.seq, req.r#final), (3, true));
    assert!(req.samples["I"][1].is_sign_negative());
}
