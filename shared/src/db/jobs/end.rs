//! A job's end: success with its result and usage, failure, cancellation.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use crate::job::{JobError, JobParams, JobView, UsageMetric};
use crate::quota::{Amounts, Reservation};

/// A job that just ended, with the reservation to settle.
pub struct Ended {
    pub view: JobView,
    pub reservation: Reservation,
}

/// JobRow's columns and the reservation's: flat, as the macros fill
/// structs column by column.
struct EndedRow {
    id: Uuid,
    kind: String,
    status: String,
    params: sqlx::types::Json<JobParams>,
    result: Option<serde_json::Value>,
    error: Option<sqlx::types::Json<JobError>>,
    attempts: i32,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    data_deleted_at: Option<DateTime<Utc>>,
    account_id: Uuid,
    quota_day: NaiveDate,
    reserved: sqlx::types::Json<Amounts>,
}

impl EndedRow {
    fn into_ended(self) -> Result<Ended, sqlx::Error> {
        let reservation = Reservation {
            job_id: self.id,
            account_id: self.account_id,
            day: self.quota_day,
            amounts: self.reserved.0,
        };
        let job = JobRow {
            id: self.id,
            kind: self.kind,
            status: self.status,
            params: self.params,
            result: self.result,
            error: self.error,
            attempts: self.attempts,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            data_deleted_at: self.data_deleted_at,
        };
        Ok(Ended {
            view: job.into_view()?,
            reservation,
        })
    }
}

/// Records success, its result and its usage in one transaction. Returns
/// `None`, changing nothing, when the job had already ended (another
/// delivery finished it first), so usage can never be recorded twice.
pub async fn succeed(
    db: &PgPool,
    id: Uuid,
    result: &serde_json::Value,
    usage: &[(UsageMetric, f64)],
    cache_hit: bool,
    result_key: &[u8],
) -> Result<Option<Ended>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let row = sqlx::query_as!(
        EndedRow,
        r#"update jobs set status = 'succeeded', result = $2, error = null, finished_at = now(),
                cache_hit = $3, result_key = $4
         where id = $1 and status in ('queued', 'running')
         returning id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                   error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                   started_at, finished_at, data_deleted_at, account_id, quota_day,
                   reserved as "reserved: sqlx::types::Json<Amounts>""#,
        id,
        result,
        cache_hit,
        result_key,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    for (metric, quantity) in usage {
        sqlx::query!(
            "insert into usage_records (job_id, account_id, metric, quantity, usage_day)
             values ($1, $2, $3, $4, $5)
             on conflict on constraint usage_records_job_metric_key do nothing",
            id,
            row.account_id,
            metric.as_str(),
            quantity,
            row.quota_day,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    row.into_ended().map(Some)
}

/// Ends a job as failed unless it already ended.
pub async fn fail(db: &PgPool, id: Uuid, error: &JobError) -> Result<Option<Ended>, sqlx::Error> {
    let row = sqlx::query_as!(
        EndedRow,
        r#"update jobs set status = 'failed', error = $2, finished_at = now()
         where id = $1 and status in ('queued', 'running')
         returning id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                   error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                   started_at, finished_at, data_deleted_at, account_id, quota_day,
                   reserved as "reserved: sqlx::types::Json<Amounts>""#,
        id,
        // Json<T> is not the macros' jsonb type (a JSON value): bound as is.
        sqlx::types::Json(error) as _,
    )
    .fetch_optional(db)
    .await?;
    row.map(EndedRow::into_ended).transpose()
}

/// A job that had already ended when a later delivery of it came: its view,
/// its reservation, and the usage it was billed (rounded per record, as the
/// worker adds it to Redis), so that what follows an end (settling the
/// quota, announcing it) can be done again; the worker that ended it may
/// have died before it could. `None` while the job is open, or when there
/// is no such job.
pub async fn already_ended(db: &PgPool, id: Uuid) -> Result<Option<(Ended, Amounts)>, sqlx::Error> {
    let row = sqlx::query_as!(
        EndedRow,
        r#"select id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                  error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                  started_at, finished_at, data_deleted_at, account_id, quota_day,
                  reserved as "reserved: sqlx::types::Json<Amounts>"
         from jobs where id = $1 and status not in ('queued', 'running')"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // The sums of `quota::ledger::snapshot`, for one job.
    let used = sqlx::query!(
        r#"select
            coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'audio_seconds'), 0)::bigint
                as "audio_ms!",
            coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'processing_seconds'), 0)::bigint
                as "processing_ms!",
            coalesce(sum(ceil(quantity)) filter (where metric = 'text_chars'), 0)::bigint
                as "text_chars!"
         from usage_records where job_id = $1"#,
        id,
    )
    .fetch_one(db)
    .await?;
    let used = Amounts::from_sums(used.audio_ms, used.text_chars, used.processing_ms);
    Ok(Some((row.into_ended()?, used)))
}

/// What cancelling a job did.
pub enum Cancelled {
    /// It was queued or running and is now cancelled.
    Now(Ended),
    /// It had already ended (`view.status` says how).
    AlreadyEnded(JobView),
}

/// Cancels the account's job unless it already ended; `None` if the
/// account has no such job. A running job's worker finds it cancelled at
/// its next safe point and its result is never committed or billed.
pub async fn cancel(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<Cancelled>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let row = sqlx::query_as!(
        EndedRow,
        r#"update jobs set status = 'cancelled', finished_at = now()
         where id = $1 and account_id = $2 and status in ('queued', 'running')
         returning id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                   error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                   started_at, finished_at, data_deleted_at, account_id, quota_day,
                   reserved as "reserved: sqlx::types::Json<Amounts>""#,
        id,
        account_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(find_for_account(db, account_id, id)
            .await?
            .map(Cancelled::AlreadyEnded));
    };
    // Not published yet: nothing to publish any more.
    sqlx::query!("delete from outbox where job_id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    row.into_ended().map(|e| Some(Cancelled::Now(e)))
}

/// Those of `ids` cancelled meanwhile (a running batch's watcher asks).
pub async fn cancelled(db: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from jobs where id = any($1) and status = 'cancelled'",
        ids,
    )
    .fetch_all(db)
    .await
}
