//! The byte layout of a saved analytic state, and its writer and reader.
//!
//! Layout: byte 0 is the analytic's id ([`crate::Analytic::ID`]), byte 1 the
//! version of its body's layout, then the body: fixed-width little-endian
//! fields in the order the analytic writes them, `f64` as its IEEE 754 bits
//! (so `-0.0`, subnormals and every last bit come back as they were).
//! Nothing is compressed and nothing is padded: a state is as long as its
//! fields. The reader checks every read against the end of the bytes and
//! returns [`StateError`] instead of panicking, so forged or truncated
//! states are refused, not trusted.

/// A saved state that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Fewer than the two header bytes.
    #[error("a saved analytic state is at least 2 bytes; got {0}")]
    Header(usize),
    /// The state is another analytic's.
    #[error("the state is of analytic {found}, not {expected} ({name})")]
    Analytic {
        name: &'static str,
        expected: u8,
        found: u8,
    },
    /// No analytic has this id.
    #[error("no analytic has id {0}")]
    UnknownAnalytic(u8),
    /// A layout this build does not read.
    #[error("{name} state version {found}; this build reads up to {known}")]
    Version {
        name: &'static str,
        found: u8,
        known: u8,
    },
    /// The bytes end inside a field.
    #[error("the state ends at byte {at} inside {field}")]
    Truncated { at: usize, field: &'static str },
    /// Bytes after the last field.
    #[error("{0} bytes after the end of the state")]
    Trailing(usize),
    /// A field whose value the analytic cannot hold.
    #[error("state field {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl StateError {
    /// A field read whole whose value is impossible.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StateError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Builds a state: the header, then fields in order.
#[derive(Debug)]
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    pub(crate) fn new(id: u8, version: u8) -> Self {
        StateWriter {
            bytes: vec![id, version],
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.bytes.push(u8::from(v));
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Reads a state's fields in the order they were written.
#[derive(Debug)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> StateReader<'a> {
    /// Checks the header against analytic `id` and returns the body's
    /// version and a reader at the body.
    pub(crate) fn open(
        bytes: &'a [u8],
        id: u8,
        name: &'static str,
    ) -> Result<(u8, Self), StateError> {
        let [found, version, ..] = *bytes else {
            return Err(StateError::Header(bytes.len()));
        };
        if found != id {
            return Err(StateError::Analytic {
                name,
                expected: id,
                found,
            });
        }
        Ok((version, StateReader { bytes, at: 2 }))
    }

    /// Fails unless every byte was read.
    pub(crate) fn end(self) -> Result<(), StateError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            n => Err(StateError::Trailing(n)),
        }
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], StateError> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(StateError::Truncated { at: self.at, field });
        };
        let out = self.bytes[self.at..end].try_into().expect("N bytes");
        self.at = end;
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, StateError> {
        Ok(self.take::<1>(field)?[0])
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, StateError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(StateError::invalid(field, format!("{v} is not 0 or 1"))),
        }
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }

    pub fn f64(&mut self, field: &'static str) -> Result<f64, StateError> {
        Ok(f64::from_bits(self.u64(field)?))
    }

    /// An `f64` that must be finite (a filter state, a level): a NaN there
    /// would stay for the rest of the lead.
    pub fn finite(&mut self, field: &'static str) -> Result<f64, StateError> {
        let v = self.f64(field)?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(StateError::invalid(field, format!("{v} is not finite")))
        }
    }
}
