//! Redis cache of finished jobs, read before Postgres on every poll.
//!
//! Only terminal states are cached: they change once more at most, when the
//! job's data is deleted. Deletion leaves a tombstone that refuses every
//! later write of the entry, so a reader that fetched the job from Postgres
//! just before the deletion cannot put the deleted data back. Each entry
//! carries its owner's account id and is only returned to that owner.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
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

    fn tombstone_key(&self, id: Uuid) -> String {
        format!("{}{id}:deleted", self.prefix)
    }

    pub async fn get(&self, account_id: Uuid, id: Uuid) -> redis::RedisResult<Option<JobView>> {
        let raw: Option<String> = self.redis.clone().get(self.key(id)).await?;
        Ok(raw
            .and_then(|raw| serde_json::from_str::<Entry>(&raw).ok())
            .filter(|entry| entry.account_id == account_id)
            .map(|entry| entry.job))
    }

    /// Drops a finished job's entry (its data was deleted) and keeps it out
    /// for as long as an entry could live: Postgres answers from now on.
    pub async fn forget(&self, id: Uuid) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .set_ex(self.tombstone_key(id), 1, self.ttl_seconds)
            .del(self.key(id))
            .query_async(&mut self.redis.clone())
            .await
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
        // Set only while no tombstone exists, in one step with the check.
        let _: i32 = Script::new(
            "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
             redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
             return 1",
        )
        .key(self.key(job.id))
        .key(self.tombstone_key(job.id))
        .arg(raw)
        .arg(self.ttl_seconds)
        .invoke_async(&mut self.redis.clone())
        .await?;
        Ok(())
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
