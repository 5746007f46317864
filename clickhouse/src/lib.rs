//! ecg-stream's ClickHouse schema and how to reach it.
//!
//! Modules:
//! - [`config`]: [`ClickHouseConfig`], the connection settings every service
//!   shares, and the client built from them.
//! - [`migrate`]: the one migration runner, used by the services at start, by
//!   `ecg-migrate` (make), and by the tests.
//! - [`rows`]: typed rows of the tables several services share.
//! - [`blocks`]: tables `blocks` and `waiting_blocks`, the samples: the
//!   stored forms of values, the row, and the reads and writes on them.
//! - [`decimal`]: the decimal form of physical samples (`blocks`' `decimal`
//!   codec); pure.
//!
//! The SQL lives in `clickhouse/migrations/NNNN_name.sql`: numbered,
//! forward-only, each statement idempotent (`IF NOT EXISTS`) so two services
//! starting together cannot trip over each other.

pub mod blocks;
pub mod config;
pub mod decimal;
pub mod migrate;
pub mod rows;

pub use config::ClickHouseConfig;
pub use migrate::{MIGRATIONS, Migration, MigrationError, migrate};
pub use rows::EcgRow;
