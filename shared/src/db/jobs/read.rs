//! A job as its owner reads it, a page of an account's jobs, and a job's
//! place in the queue.

use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use crate::job::{JobError, JobKind, JobParams, JobStatus, JobSummary, JobView};

/// The job as its owner sees it; `None` for a missing job and for another
/// account's job alike.
pub async fn find_for_account(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<JobView>, sqlx::Error> {
    let row = sqlx::query_as!(
        JobRow,
        r#"select id, kind, status, params as "params: sqlx::types::Json<JobParams>", result,
                  error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                  started_at, finished_at, data_deleted_at
           from jobs where id = $1 and account_id = $2"#,
        id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    row.map(JobRow::into_view).transpose()
}

/// One page of an account's jobs, newest first: at most `limit`, only
/// those in `status` if given, and only those older than the job `before`
/// (the last of the previous page) if given. Ordered by `(created_at, id)`
/// so that jobs created in the same microsecond still page in a fixed
/// order; a `before` that names none of the account's jobs gives an empty
/// page rather than someone else's position.
pub async fn list_for_account(
    db: &PgPool,
    account_id: Uuid,
    status: Option<JobStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<JobSummary>, sqlx::Error> {
    let rows = sqlx::query_as!(
        SummaryRow,
        r#"select id, kind, status, params as "params: sqlx::types::Json<JobParams>",
                  error as "error: sqlx::types::Json<JobError>", attempts, created_at,
                  started_at, finished_at, data_deleted_at
           from jobs j
           where j.account_id = $1
             and ($2::text is null or j.status = $2)
             and ($3::uuid is null
                  or (j.created_at, j.id) < (select c.created_at, c.id from jobs c
                                              where c.id = $3 and c.account_id = $1))
           order by j.created_at desc, j.id desc
           limit $4"#,
        account_id,
        status.map(JobStatus::as_str),
        before,
        limit,
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(SummaryRow::into_summary).collect()
}

struct SummaryRow {
    id: Uuid,
    kind: String,
    status: String,
    params: sqlx::types::Json<JobParams>,
    error: Option<sqlx::types::Json<JobError>>,
    attempts: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    data_deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl SummaryRow {
    fn into_summary(self) -> Result<JobSummary, sqlx::Error> {
        let decode = |what: &str, value: &str| {
            sqlx::Error::Decode(format!("unknown job {what} {value:?} in database").into())
        };
        Ok(JobSummary {
            id: self.id,
            kind: JobKind::parse(&self.kind).ok_or_else(|| decode("kind", &self.kind))?,
            status: JobStatus::parse(&self.status).ok_or_else(|| decode("status", &self.status))?,
            params: self.params.0,
            error: self.error.map(|e| e.0),
            attempts: self.attempts,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            data_deleted_at: self.data_deleted_at,
        })
    }
}

/// Where a queued job stands in its queue.
pub struct Place {
    /// Jobs ahead of it.
    pub ahead: i64,
    /// Mean run time of the queue's recent jobs, in seconds.
    pub recent_seconds: Option<f64>,
    pub queue: String,
}

/// The job's place in line (`None` unless it is queued).
pub async fn place(db: &PgPool, account_id: Uuid, id: Uuid) -> Result<Option<Place>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select
            (select count(*) from jobs a
              where a.queue = j.queue and a.status = 'queued' and a.id < j.id) as "ahead!",
            (select avg(extract(epoch from r.finished_at - r.started_at))::double precision
               from (select finished_at, started_at from jobs r
                      where r.queue = j.queue and r.status = 'succeeded'
                      order by r.finished_at desc limit 50) r) as "recent_seconds?",
            j.queue as "queue!"
         from jobs j
         where j.id = $1 and j.account_id = $2 and j.status = 'queued' and j.queue is not null"#,
        id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Place {
        ahead: row.ahead,
        recent_seconds: row.recent_seconds,
        queue: row.queue,
    }))
}
