//! Scopes as types, so a handler states the scope it needs in its signature
//! (`Authorized<EcgWrite>`) instead of checking a string at run time.

/// A scope a handler can require through [`crate::Authorized`].
pub trait Scope: Send + Sync + 'static {
    /// The scope token as it appears in the `scope` claim.
    const NAME: &'static str;
}

/// Permission to upload ECG data.
#[derive(Debug, Clone, Copy)]
pub struct EcgWrite;

impl Scope for EcgWrite {
    const NAME: &'static str = "ecg:write";
}

/// Permission to read ECG data and derived results.
#[derive(Debug, Clone, Copy)]
pub struct EcgRead;

impl Scope for EcgRead {
    const NAME: &'static str = "ecg:read";
}
