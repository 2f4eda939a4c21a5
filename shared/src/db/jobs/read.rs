//! A job as its owner reads it, and its place in the queue.

use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use crate::job::{JobError, JobParams, JobView};

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
