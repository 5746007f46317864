//! The data contracts of ecg-stream, shared by every service: what clients
//! send and receive over HTTP, what travels through Kafka, and what counts as
//! valid. No I/O, no async: types, their encodings and their checks.
//!
//! Modules:
//! - [`api`]: the v1 HTTP request and response bodies (JSON).
//! - [`chunk`]: [`Chunk`], the Kafka message, and its versioned Arrow IPC
//!   encoding (see `schemas/README.md` for the format, readable from any
//!   language with an Arrow library).
//! - [`json`]: JSON decoding that reports where a body is wrong, as a JSON
//!   pointer.
//! - [`validate`]: the limits and rules every request must meet, with errors
//!   that name the field and the limit.
//!
//! Units: v1 accepts physical samples in millivolts (`"mV"`, the default) or
//! microvolts (`"uV"`). Samples are stored exactly as sent (`f64`), with the
//! unit recorded beside them; zero crossings do not depend on the unit.

pub mod api;
pub mod chunk;
pub mod json;
pub mod validate;

pub use api::{EcgStatus, Status, Units};
pub use chunk::{Chunk, DecodeError, EcgHeader};
pub use validate::{Invalid, Limits};
