//! A small fleet in real time against an in-process stack: every device
//! sends everything, latency is measured for every chunk, and verification
//! finds every ECG's insights equal to what its device sent.

use clap::Parser as _;
use ecg_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_streams_in_real_time_and_every_ecg_verifies() -> anyhow::Result<()> {
    let stack = Stack::start("sim_fleet").await?;
    let config = ecg_sim::Config::parse_from([
        "ecg-sim",
        "--ingest",
        &stack.ingest,
        "--query",
        &stack.query,
        "--devices",
        "30",
        "--leads",
        "12",
        "--rate",
        "500",
        "--duration",
        "4",
        "--chunk-ms",
        "500",
        "--ramp-up",
        "1",
        "--verify",
        "--verify-timeout",
        "60",
        "--progress",
        "1",
    ]);
    let report = ecg_sim::run(config).await?;
    assert!(report.passed(), "{report}");
    assert_eq!(report.chunks_accepted, 30 * 8);
    assert_eq!(report.samples_accepted, 30 * 12 * 2000);
    assert_eq!(report.chunk_latency.count, 240);
    let v = report.verification.as_ref().expect("verified");
    assert_eq!((v.checked, v.matched), (30, 30));
    // Real time: the sending took at least the signal's duration.
    assert!(report.sending_seconds >= 4.0, "{report}");
    stack.stop().await
}
