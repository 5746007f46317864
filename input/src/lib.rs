//! Request bodies read as samples: what clients send, turned into the lead
//! columns of `ecg-schemas`, with errors that name the field as a JSON
//! pointer (`/samples/II/17`). The gateway reads every body with it; the
//! FHIR reader of `ecg-formats` shares its JSON errors and number parser,
//! and `ecgctl` its time column names. The contracts themselves (the types,
//! the Kafka chunk, validation) are `ecg-schemas`'; nothing here reaches
//! Kafka without passing `Limits`.
//!
//! Modules:
//! - [`json`]: JSON decoding that reports where a body is wrong, with a fast
//!   path for chunk bodies.
//! - [`tabular`]: CSV and Arrow IPC chunk bodies, decoded to the same lead
//!   columns as JSON bodies.
//! - [`stream`]: whole-signal CSV and Arrow IPC bodies of any length, read
//!   block by block.
//! - [`number`]: decimal text to `f64`, exactly as `str::parse` but several
//!   times faster on the short numbers ECG samples are.
//!
//! The formats, as clients see them, are in `input/README.md`.

pub mod json;
pub mod number;
pub mod stream;
pub mod tabular;
