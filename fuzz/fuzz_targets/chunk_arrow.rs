//! Fuzzes `Chunk::decode`, the decoder of every Kafka message the processor
//! reads, on arbitrary bytes.
//!
//! Checks, for any input: decoding never panics, hangs or exhausts memory;
//! when it succeeds, `Limits::check_chunk` never panics, and the chunk
//! survives `encode` then `decode` bit for bit (floats are compared by
//! `to_bits`, so NaN payloads and the sign of zero count).

#![no_main]

use ecg_schemas::{Chunk, EcgHeader, Limits, Signal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = Chunk::decode(data) else {
        return;
    };
    let _ = Limits::default().check_chunk(&chunk);
    let bytes = match chunk.encode() {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded chunk does not re-encode: {e}\n{chunk:?}"),
    };
    let again = match Chunk::decode(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("a re-encoded chunk does not decode: {e}\n{chunk:?}"),
    };
    assert!(
        same_chunk(&chunk, &again),
        "round trip changed the chunk (floats compare by bits; Debug prints every NaN as NaN):\n before {chunk:?}\n after  {again:?}"
    );
});

/// Equality where two floats are equal when their bits are: `PartialEq` on
/// `Chunk` would call any chunk holding a NaN different from itself.
fn same_chunk(a: &Chunk, b: &Chunk) -> bool {
    same_header(&a.header, &b.header)
        && a.seq == b.seq
        && a.is_final == b.is_final
        && same_signal(&a.samples, &b.samples)
}

fn same_signal(a: &Signal, b: &Signal) -> bool {
    match (a, b) {
        (Signal::Physical(a), Signal::Physical(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_f64s(x, y))
        }
        (
            Signal::Digital {
                adc: a,
                calibration: ca,
            },
            Signal::Digital {
                adc: b,
                calibration: cb,
            },
        ) => {
            a == b
                && ca.len() == cb.len()
                && ca
                    .iter()
                    .zip(cb)
                    .all(|(x, y)| x.gain.to_bits() == y.gain.to_bits() && x.baseline == y.baseline)
        }
        _ => false,
    }
}

fn same_header(a: &EcgHeader, b: &EcgHeader) -> bool {
    a.ecg_id == b.ecg_id
        && a.tenant == b.tenant
        && a.device_id == b.device_id
        && a.sample_rate_hz.to_bits() == b.sample_rate_hz.to_bits()
        && a.units == b.units
        && a.started_at == b.started_at
        && a.leads == b.leads
}

fn same_f64s(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
