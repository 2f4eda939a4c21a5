//! The transactional outbox: job messages written in the job's own
//! transaction, published after commit by the submit path or, when that
//! fails, by the relay.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::queue::Outgoing;

/// Largest message the outbox takes (the table checks it too): messages
/// carry ids and parameters, never audio or text.
pub const MAX_PAYLOAD_BYTES: usize = 8192;

/// A message waiting to be published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub job_id: Uuid,
    pub model: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub attempts: i32,
}

/// Adds the job's message in the caller's transaction.
pub async fn insert(tx: &mut PgConnection, message: &Outgoing) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into outbox (job_id, model, routing_key, payload) values ($1, $2, $3, $4)",
        message.job_id,
        message.model,
        message.routing_key,
        message.payload,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Marks a job's messages sent (the broker confirmed them).
pub async fn sent(db: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from outbox where job_id = $1", job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The submit path could not publish the job's message: the relay takes
/// it now rather than after the grace.
pub async fn hand_over(db: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update outbox set handed_over = true where job_id = $1",
        job_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Locks up to `limit` due messages older than `grace_ms` (or handed over)
/// for the caller's transaction; other relays skip them. The grace leaves
/// a fresh message to the submit path that wrote it.
pub async fn lock_due(
    tx: &mut PgConnection,
    grace_ms: i64,
    limit: i64,
) -> Result<Vec<Pending>, sqlx::Error> {
    // `$1::bigint` first: the milliseconds are bound as a bigint, as before,
    // and checked as one.
    sqlx::query_as!(
        Pending,
        "select id, job_id, model, routing_key, payload, attempts from outbox
         where next_attempt_at <= now()
           and (handed_over
                or created_at <= now() - make_interval(secs => $1::bigint::double precision / 1000))
         order by id
         limit $2
         for update skip locked",
        grace_ms,
        limit,
    )
    .fetch_all(tx)
    .await
}

pub async fn delete(tx: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!("delete from outbox where id = any($1)", ids)
        .execute(tx)
        .await?;
    Ok(())
}

/// Puts failed messages off: 1, 2, 4 … seconds, at most 30.
pub async fn postpone(tx: &mut PgConnection, ids: &[i64], error: &str) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "update outbox set attempts = attempts + 1, last_error = left($2, 500),
                next_attempt_at = now() + make_interval(secs => least(30, power(2, least(attempts, 5))))
         where id = any($1)",
        ids,
        error,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Messages not yet published.
pub async fn backlog(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "count!" from outbox"#)
        .fetch_one(db)
        .await
}
