//! Redis cache of finished jobs, read before Postgres on every poll.
//!
//! Only terminal states are cached: they never change again, so a cached
//! entry can never be stale and no ordering between writers matters. Each
//! entry carries its owner's account id and is only returned to that owner.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{JobView, Progress};

#[derive(Clone)]
pub struct JobCache {
    redis: ConnectionManager,
    prefix: String,
    ttl_seconds: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    account_id: Uuid,
    job: JobView,
}

impl JobCache {
    pub fn new(redis: ConnectionManager, namespace: &str, ttl_seconds: u64) -> Self {
        Self {
            redis,
            prefix: format!("{namespace}:job:"),
            ttl_seconds,
        }
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}{id}", self.prefix)
    }

    pub async fn get(&self, account_id: Uuid, id: Uuid) -> redis::RedisResult<Option<JobView>> {
        let raw: Option<String> = self.redis.clone().get(self.key(id)).await?;
        Ok(raw
            .and_then(|raw| serde_json::from_str::<Entry>(&raw).ok())
            .filter(|entry| entry.account_id == account_id)
            .map(|entry| entry.job))
    }

    /// Drops a finished job's entry (its data was deleted).
    pub async fn forget(&self, id: Uuid) -> redis::RedisResult<()> {
        self.redis.clone().del(self.key(id)).await
    }

    /// Stores a finished job; other states are ignored (see module docs).
    pub async fn put_terminal(&self, account_id: Uuid, job: &JobView) -> redis::RedisResult<()> {
        if !job.status.is_terminal() {
            return Ok(());
        }
        let entry = Entry {
            account_id,
            job: job.clone(),
        };
        let raw = serde_json::to_string(&entry).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::TypeError, "serialise", e.to_string()))
        })?;
        self.redis
            .clone()
            .set_ex(self.key(job.id), raw, self.ttl_seconds)
            .await
    }
}

impl JobCache {
    fn progress_key(&self, id: Uuid) -> String {
        format!("{}{id}:progress", self.prefix)
    }

    /// A running job's progress; kept a minute after the last report.
    pub async fn put_progress(&self, id: Uuid, progress: Progress) -> redis::RedisResult<()> {
        let raw = serde_json::to_string(&progress).unwrap_or_default();
        self.redis
            .clone()
            .set_ex(self.progress_key(id), raw, 60)
            .await
    }

    pub async fn progress(&self, id: Uuid) -> redis::RedisResult<Option<Progress>> {
        let raw: Option<String> = self.redis.clone().get(self.progress_key(id)).await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }
}

pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    // Reconnection is retried twice, at most half a second apart: requests
    // waiting on a Redis that is down must fail fast (quota checks fail
    // closed) rather than hang. The factor multiplies the delay each time
    // (redis 0.32 uses it that way); left at its default of 100, the
    // second retry alone waits a minute.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(std::time::Duration::from_secs(2))
        .set_response_timeout(std::time::Duration::from_secs(5))
        .set_number_of_retries(2)
        .set_factor(2)
        .set_max_delay(500);
    ConnectionManager::new_with_config(client, config).await
}
