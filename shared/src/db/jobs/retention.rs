//! Deleting a job's data on request, and the accounts' retention of
//! inputs and results.

use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use crate::job::{JobError, JobParams, JobStatus, JobView};

/// What deleting a job's data did.
pub enum DataDeleted {
    Now(Box<JobView>),
    /// The job has not ended: cancel it first.
    NotEnded(JobStatus),
}

/// Deletes an ended job's input, result, and the result cache's copy of
/// it; the job row and its usage records stay. `None`: no such job.
pub async fn delete_data(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<DataDeleted>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        "select status, result_key from jobs where id = $1 and account_id = $2 for update",
        id,
        account_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let status = JobStatus::parse(&row.status).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown job status {:?}", row.status).into())
    })?;
    if !status.is_terminal() {
        return Ok(Some(DataDeleted::NotEnded(status)));
    }
    sqlx::query!("delete from job_inputs where job_id = $1", id)
        .execute(&mut *tx)
        .await?;
    if let Some(key) = row.result_key {
        sqlx::query!("delete from result_cache where key = $1", key)
            .execute(&mut *tx)
            .await?;
    }
    let row = sqlx::query_as!(
        JobRow,
        r#"update jobs set result = null, result_key = null,
                data_deleted_at = coalesce(data_deleted_at, now())
         where id = $1
         returning id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                   error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                   started_at, finished_at, data_deleted_at"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    row.into_view().map(|v| Some(DataDeleted::Now(Box::new(v))))
}

/// Applies every account's retention: inputs and results of jobs that
/// ended longer ago than the account keeps them. Returns the jobs whose
/// results went (to evict from caches), with their accounts.
pub async fn apply_retention(db: &PgPool, limit: i64) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query!(
        "delete from job_inputs i using jobs j, accounts a
         where i.job_id = j.id and a.id = j.account_id
           and a.input_retention_days is not null and j.finished_at is not null
           and j.finished_at < now() - make_interval(days => a.input_retention_days)",
    )
    .execute(db)
    .await?;
    let mut tx = db.begin().await?;
    let expired = sqlx::query!(
        "select j.id, j.account_id, j.result_key from jobs j join accounts a on a.id = j.account_id
         where a.result_retention_days is not null and j.result is not null
           and j.finished_at < now() - make_interval(days => a.result_retention_days)
         limit $1
         for update of j skip locked",
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = expired.iter().map(|row| row.id).collect();
    let keys: Vec<Vec<u8>> = expired
        .iter()
        .filter_map(|row| row.result_key.clone())
        .collect();
    sqlx::query!("delete from result_cache where key = any($1)", &keys)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "update jobs set result = null, result_key = null,
                data_deleted_at = coalesce(data_deleted_at, now())
         where id = any($1)",
        &ids,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(expired
        .into_iter()
        .map(|row| (row.id, row.account_id))
        .collect())
}
