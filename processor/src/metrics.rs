//! Prometheus metrics, served at `/metrics` beside `/healthz`.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `ecg_processor_consumer_lag` | gauge | `partition`: messages behind the high watermark (librdkafka statistics, every `kafka.statistics_interval_ms`) |
//! | `ecg_processor_messages_total` | counter | `outcome`: written (placed), duplicate, parked, failed |
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

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    ecg_runtime::metrics::response()
}
