//! Writes one example chunk, encoded exactly as it travels through Kafka, to
//! the file named by the first argument: a sample to open with any Arrow
//! library (see schemas/README.md).

use ecg_schemas::{Chunk, EcgHeader, Signal, Units};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: write_chunk FILE")?;
    let chunk = Chunk {
        header: EcgHeader {
            ecg_id: uuid::Uuid::new_v4(),
            tenant: "demo".into(),
            device_id: "example-device".into(),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: time::OffsetDateTime::now_utc(),
            leads: vec!["I".into(), "II".into()],
        },
        seq: 0,
        is_final: true,
        samples: Signal::from_vecs(vec![vec![0.1, 0.0, -0.2], vec![0.3, -0.0, 0.1]]),
    };
    std::fs::write(path, chunk.encode()?)?;
    Ok(())
}
