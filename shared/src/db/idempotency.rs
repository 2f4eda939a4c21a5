//! Idempotency keys of job submissions.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;
/// How long a request in progress holds its key before a retry may take
/// over (the API died mid-request).
pub const LOCK_SECONDS: i64 = 120;

/// What a request finds under its key.
pub enum Claim {
    /// The key is ours: go on and [`complete`] it, or [`abandon`] it.
    Acquired,
    /// The same request finished before: its response.
    Replay {
        status: u16,
        body: Vec<u8>,
        job_id: Option<Uuid>,
    },
    /// The same request is still being answered.
    InProgress,
    /// Another request used this key.
    Mismatch,
}

/// Takes `key` for this request, or says what holds it. A key older than
/// the retention, or whose holder died, is taken over.
pub async fn claim(
    db: &PgPool,
    account_id: Uuid,
    key: &str,
    request_hash: &[u8; 32],
) -> Result<Claim, sqlx::Error> {
    // Cast outside the macro: a cast inside it would switch off the check of
    // the parameter's type.
    let (lock_seconds, retention_hours) = (LOCK_SECONDS as f64, RETENTION_HOURS as i32);
    let acquired = sqlx::query_scalar!(
        r#"insert into idempotency_keys (account_id, key, request_hash, locked_until)
         values ($1, $2, $3, now() + make_interval(secs => $4))
         on conflict (account_id, key) do update
            set request_hash = excluded.request_hash, locked_until = excluded.locked_until,
                created_at = now(), response_status = null, response_body = null, job_id = null
            where idempotency_keys.created_at < now() - make_interval(hours => $5::int)
               or (idempotency_keys.response_status is null
                   and idempotency_keys.locked_until < now())
         returning true as "acquired!""#,
        account_id,
        key,
        request_hash.as_slice(),
        lock_seconds,
        retention_hours,
    )
    .fetch_optional(db)
    .await?;
    if acquired.is_some() {
        return Ok(Claim::Acquired);
    }
    struct Row {
        request_hash: Vec<u8>,
        response_status: Option<i16>,
        response_body: Option<Vec<u8>>,
        job_id: Option<Uuid>,
    }
    let row = sqlx::query_as!(
        Row,
        "select request_hash, response_status, response_body, job_id
         from idempotency_keys where account_id = $1 and key = $2",
        account_id,
        key,
    )
    .fetch_optional(db)
    .await?;
    Ok(match row {
        // Released between the two statements: the caller may try again.
        None => Claim::InProgress,
        Some(row) if row.request_hash != request_hash.as_slice() => Claim::Mismatch,
        Some(Row {
            response_status: Some(status),
            response_body,
            job_id,
            ..
        }) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body: response_body.unwrap_or_default(),
            job_id,
        },
        Some(_) => Claim::InProgress,
    })
}

/// Stores the response, in the transaction that commits the job.
pub async fn complete(
    tx: &mut PgConnection,
    account_id: Uuid,
    key: &str,
    status: u16,
    body: &[u8],
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update idempotency_keys set response_status = $3, response_body = $4, job_id = $5
         where account_id = $1 and key = $2",
        account_id,
        key,
        i16::try_from(status).unwrap_or(500),
        body,
        job_id,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Forgets an unfinished claim: the request failed, and failures are not
/// remembered (a retry runs again).
pub async fn abandon(db: &PgPool, account_id: Uuid, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from idempotency_keys
         where account_id = $1 and key = $2 and response_status is null",
        account_id,
        key,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets a finished claim whose job can no longer answer a replay (it
/// was cancelled, failed or had its data deleted), so the same request
/// makes a new job.
pub async fn forget(
    db: &PgPool,
    account_id: Uuid,
    key: &str,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from idempotency_keys where account_id = $1 and key = $2 and job_id = $3",
        account_id,
        key,
        job_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes keys past their retention; returns how many.
pub async fn purge_expired(db: &PgPool) -> Result<u64, sqlx::Error> {
    let retention_hours = RETENTION_HOURS as i32;
    let done = sqlx::query!(
        "delete from idempotency_keys where created_at < now() - make_interval(hours => $1::int)",
        retention_hours,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
