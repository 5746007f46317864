//! The data contracts of ecg-stream, shared by every service: what clients
//! send and receive over HTTP, what travels through Kafka, and what counts as
//! valid. No I/O, no async: types, their encodings and their checks.
//!
//! Modules:
//! - [`api`]: the v1 HTTP request and response bodies (JSON).
//! - [`chunk`]: [`Chunk`], the Kafka message, and its versioned Arrow IPC
//!   encoding (see `schemas/README.md` for the format, readable from any
//!   language with an Arrow library).
//! - [`samples`]: [`Signal`], physical or digital samples held in Arrow
//!   buffers (shared, not copied, from an Arrow body to the Kafka encoder),
//!   and the unit model.
//! - [`ipc`]: a structural check of Arrow IPC streams before arrow reads them.
//! - [`validate`]: the limits and rules every request must meet, with errors
//!   that name the field and the limit.
//!
//! Units: samples are physical (floats in `"mV"`, the default, or `"uV"`) or
//! digital (integer ADC counts with a per-lead gain and baseline, as in WFDB);
//! see [`samples`]. Either way they are stored exactly as sent.
//!
//! Reading request bodies (JSON, CSV, Arrow IPC) into these types is the
//! `ecg-input` crate's.

pub mod api;
pub mod chunk;
pub mod ipc;
pub mod samples;
pub mod validate;

pub use api::{EcgStatus, Status, Units};
pub use chunk::{Chunk, DecodeError, EcgHeader};
pub use samples::{Calibration, Signal};
pub use validate::{Invalid, Limits};
