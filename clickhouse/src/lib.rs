//! ecg-stream's ClickHouse schema, and the one home of the SQL on its
//! tables: every row type, insert and read that a service runs is here, next
//! to the migrations that define the tables. The services call these
//! functions and write no SQL of their own on these tables. Every query
//! binds its values (`?` or `{name:Type}`), never formats them in.
//!
//! Modules:
//! - [`config`]: [`ClickHouseConfig`], the connection settings every service
//!   shares, and the client built from them.
//! - [`migrate`]: the one migration runner, used by `ecg-migrate` (make,
//!   compose) and the tests; the services check the schema at start and
//!   migrate only when allowed ([`migrate::ensure`]).
//! - [`access`]: the analysts' read-only logins, one tenant each (the users.d
//!   document `ecg-migrate analysts` prints), and the list of tenant tables
//!   their row filters cover.
//! - [`service_users`]: the services' own logins, each granted only what its
//!   queries need (the users.d document `ecg-migrate services` prints).
//! - One module per table, with its row types, inserts and reads:
//!   - [`ecgs`]: table `ecgs`, the ECG registry ([`EcgRow`]); the one
//!     "newest row wins" read.
//!   - [`blocks`]: tables `blocks` and `waiting_blocks`, the samples: the
//!     stored forms of values, the row, the processor's writes and reloads,
//!     and the query API's counts, totals and block cursors.
//!   - [`progress`]: table `ecg_progress`, where each ECG stands in the
//!     processor ([`progress::Progress`], typed once for writing and
//!     reading).
//!   - [`failed_chunks`]: table `failed_chunks`, refused messages and why.
//!   - [`idempotency`]: table `idempotency_keys`, the `Idempotency-Key`s
//!     of ECG creates (the gateway's only).
//!   - [`beats`]: view `beats`, the beats found in the placed blocks.
//! - Reads that join several tables, for the query API:
//!   - [`status`]: the ECG list with its status, counts by status, an ECG's
//!     last activity.
//!   - [`live`]: the dashboard's active streams and pipeline figures.
//! - [`units`]: how [`ecg_schemas::Units`] is stored (its text).
//! - `insert`: the one batched INSERT every table's module writes with.
//! - [`decimal`]: the decimal form of physical samples (`blocks`' `decimal`
//!   codec); pure.
//!
//! The SQL of the schema lives in `clickhouse/migrations/NNNN_name.sql`:
//! numbered, forward-only, each statement idempotent (`IF NOT EXISTS`) so
//! two services starting together cannot trip over each other.

pub mod access;
pub mod beats;
pub mod blocks;
pub mod config;
pub mod decimal;
pub mod ecgs;
pub mod failed_chunks;
pub mod idempotency;
mod insert;
pub mod live;
pub mod migrate;
pub mod progress;
pub mod service_users;
pub mod status;
pub mod units;

pub use config::ClickHouseConfig;
pub use ecgs::EcgRow;
pub use migrate::{MIGRATIONS, Migration, MigrationError, migrate};
