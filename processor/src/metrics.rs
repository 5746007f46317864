//! Prometheus metrics, served at `/metrics` beside `/healthz`.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `ecg_processor_consumer_lag` | gauge | `partition`: messages behind the high watermark (librdkafka statistics, every `kafka.statistics_interval_ms`) |
//! | `ecg_processor_messages_total` | counter | `outcome`: written (placed), duplicate, parked, failed |
//! | `ecg_processor_parked_placed_total` | counter | parked chunks placed once their ECG's stored rows were read |
//! | `ecg_processor_samples_written_total` | counter | |
//! | `ecg_processor_rows_inserted_total` | counter | `table`: blocks and waiting_blocks (one row per chunk and lead), failed_chunks, ecg_progress |
//! | `ecg_processor_insert_duration_seconds` | histogram | one batch's inserts, retries included |
//! | `ecg_processor_batch_size` | histogram | `unit`: messages, samples |
//! | `ecg_processor_retries_total` | counter | `operation`: load_states, write_batch, dead_letter |
//! | `ecg_processor_dead_lettered_total` | counter | |
//! | `ecg_processor_rebalances_total` | counter | `kind`: assign, revoke |
//! | `ecg_processor_waiting_chunks` | gauge | messages put back for the next batch (their ECG's state was rebuilt) |
//! | `ecg_processor_ecg_states` | gauge | ECGs whose running state is in memory |
//!
//! The recorder is process-wide (`ecg_runtime::metrics`).

use axum::response::Response;

// The names in the table above, for wherever a metric is recorded.
pub const CONSUMER_LAG: &str = "ecg_processor_consumer_lag";
pub const MESSAGES: &str = "ecg_processor_messages_total";
pub const PARKED_PLACED: &str = "ecg_processor_parked_placed_total";
pub const SAMPLES_WRITTEN: &str = "ecg_processor_samples_written_total";
pub const ROWS_INSERTED: &str = "ecg_processor_rows_inserted_total";
pub const INSERT_DURATION: &str = "ecg_processor_insert_duration_seconds";
pub const BATCH_SIZE: &str = "ecg_processor_batch_size";
pub const RETRIES: &str = "ecg_processor_retries_total";
pub const DEAD_LETTERED: &str = "ecg_processor_dead_lettered_total";
pub const REBALANCES: &str = "ecg_processor_rebalances_total";
pub const WAITING_CHUNKS: &str = "ecg_processor_waiting_chunks";
pub const ECG_STATES: &str = "ecg_processor_ecg_states";

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    ecg_runtime::metrics::response()
}
