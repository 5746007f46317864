//! A throwaway stack for trying ecg-sim without touching the shared local
//! one: the three services in-process (as the e2e tests run them) on ports
//! the OS picks, against the ClickHouse and broker of `ECG_TEST_CLICKHOUSE_URL`
//! and `ECG_TEST_KAFKA_BROKERS`, with a database and topic of their own. Prints
//! the URLs, then serves until it receives a line on stdin or Ctrl-C:
//!
//!   cargo run --release -p ecg-sim --example stack
//!   ecg-sim --ingest http://127.0.0.1:PORT --query http://127.0.0.1:PORT --verify

use ecg_e2e::Stack;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::start("sim_stack").await?;
    println!(
        "ECG_INGEST_URL={} ECG_QUERY_URL={}",
        stack.ingest, stack.query
    );
    let line = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()));
    tokio::select! {
        _ = line => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    stack.stop().await
}
