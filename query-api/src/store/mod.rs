//! The reads that fold stored blocks: exact crossings per window of an ECG
//! (`windows`), min/max plot buckets (`samples`) and a device's buckets
//! over time (`devices`). The SQL, the rows and every other read are
//! `ecg_clickhouse`'s (the services write no SQL on shared tables); what is
//! here is the folding: values decoded bit for bit from the blocks, and
//! crossings counted by the `signal` kernel (`crate::series`), never in SQL.
//!
//! The block cursors read `blocks` without `FINAL`: the processor writes
//! each block once (one row per ECG, lead and seq, and `blocks` holds each
//! ECG's chunks `0..n` without a gap), and the folds count a row seen twice
//! once.

pub(crate) mod blocks;
mod devices;
mod samples;
mod windows;

pub use devices::{BucketCrossings, BucketVolume, DeviceBuckets, device_buckets};
pub use samples::{Bucket, sample_buckets};
pub use windows::{WindowCount, crossing_windows};
