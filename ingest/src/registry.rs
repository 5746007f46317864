//! The ECG registry: table `ecgs` in ClickHouse (its SQL is
//! `ecg_clickhouse::ecgs`). The gateway writes a row when an ECG is opened
//! and reads it to check that a chunk's ECG exists, belongs to the caller's
//! tenant, and which leads it declared. An ECG's row changes once at most:
//! when its final seq becomes known (a whole-signal upload, a chunk marked
//! final, an end), the gateway writes it again with `final_seq`. A found row
//! is cached for the life of the process and replaced when this gateway
//! writes the final row; another gateway instance keeps its row without the
//! final seq, so a chunk it lets past the final one reaches the processor,
//! which ignores it (the ECG is unharmed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clickhouse::Client;
use ecg_clickhouse::{EcgRow, blocks, ecgs};
use uuid::Uuid;

/// Bound on cached ECGs; past it the cache starts over (rows are cheap to
/// read again, and this keeps memory flat without an LRU).
const CACHE_LIMIT: usize = 100_000;

/// Registered ECGs by (tenant, id).
type Cache = HashMap<(String, Uuid), Arc<EcgRow>>;

#[derive(Clone)]
pub struct Registry {
    client: Client,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(client: Client) -> Self {
        Registry {
            client: client.with_setting("async_insert", "0"),
            cache: Arc::default(),
        }
    }

    /// Whether ClickHouse answers (readiness).
    pub async fn ping(&self) -> clickhouse::error::Result<()> {
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(drop)
    }

    /// Registers a new ECG.
    pub async fn insert(&self, record: EcgRow) -> clickhouse::error::Result<()> {
        ecgs::insert(&self.client, &record).await?;
        self.remember(Arc::new(record));
        Ok(())
    }

    /// The ECG `id` of `tenant`, if it exists. Another tenant's ECG is
    /// indistinguishable from a missing one.
    pub async fn get(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> clickhouse::error::Result<Option<Arc<EcgRow>>> {
        let key = (tenant.to_string(), id);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Some(hit.clone()));
        }
        let found = ecgs::latest(&self.client, tenant, id).await?;
        Ok(found.map(|r| {
            let r = Arc::new(r);
            self.remember(r.clone());
            r
        }))
    }

    /// The highest seq of the ECG stored so far, placed or waiting.
    pub async fn highest_stored_seq(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> clickhouse::error::Result<Option<u32>> {
        blocks::highest_seq(&self.client, tenant, id).await
    }

    fn remember(&self, record: Arc<EcgRow>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert((record.tenant.clone(), record.ecg_id), record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Poisoning only means a panic elsewhere mid-insert; the map is fine.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
