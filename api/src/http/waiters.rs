//! Caps on requests that wait: long-polls (`?wait=`) and event streams.
//! Each holds a connection and a task for up to a minute (a stream, for as
//! long as its job runs), so they are counted per account and per process:
//! one account cannot take every waiting slot of a process, and a process
//! never holds more waiting requests than it is configured to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

struct Inner {
    process: Arc<Semaphore>,
    per_account: usize,
    accounts: Mutex<HashMap<Uuid, usize>>,
}

/// One waiting request; its slots are given back when it is dropped.
pub struct Waiting {
    inner: Arc<Inner>,
    account: Uuid,
    _process: OwnedSemaphorePermit,
}

impl Waiters {
    pub fn new(per_process: usize, per_account: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                process: Arc::new(Semaphore::new(per_process)),
                per_account,
                accounts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A slot for one more waiting request of `account`, or a 429 saying
    /// which cap is full.
    pub fn enter(&self, account: Uuid) -> Result<Waiting, ApiError> {
        let full = |message: String| ApiError::TooManyRequests {
            code: "too_many_waiting",
            message,
            limit: "waiting_requests".into(),
            retry_after: 1,
        };
        let permit = Arc::clone(&self.inner.process)
            .try_acquire_owned()
            .map_err(|_| {
                full(
                    "this server holds as many waiting requests as it may; poll instead or retry"
                        .into(),
                )
            })?;
        let mut accounts = self
            .inner
            .accounts
            .lock()
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("waiter counts poisoned")))?;
        let held = accounts.entry(account).or_insert(0);
        if *held >= self.inner.per_account {
            return Err(full(format!(
                "this account already has {} waiting requests (long-polls and event streams) on this server",
                self.inner.per_account
            )));
        }
        *held += 1;
        Ok(Waiting {
            inner: Arc::clone(&self.inner),
            account,
            _process: permit,
        })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut accounts) = self.inner.accounts.lock() {
            if let Some(held) = accounts.get_mut(&self.account) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    accounts.remove(&self.account);
                }
            }
        }
    }
}

/// A pause of up to a second before a resync's read: after a Redis
/// reconnection every waiting request reads its job again, and spreading
/// those reads keeps them from reaching Postgres all at once.
pub async fn resync_pause() {
    let millis = rand::Rng::gen_range(&mut rand::thread_rng(), 0..1000);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_gets_its_share_and_slots_come_back_when_dropped() {
        let waiters = Waiters::new(3, 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = waiters.enter(a).expect("first");
        let _second = waiters.enter(a).expect("second");
        assert!(waiters.enter(a).is_err(), "a third for one account");
        let _other = waiters.enter(b).expect("another account");
        assert!(waiters.enter(b).is_err(), "the process is full");
        drop(first);
        waiters.enter(a).expect("a slot came back");
    }
}
