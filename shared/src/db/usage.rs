//! Usage records: the metered quantities of a job.

use sqlx::PgPool;
use uuid::Uuid;

/// One metered quantity of one job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageRecord {
    pub metric: String,
    pub quantity: f64,
}

pub async fn for_job(db: &PgPool, job_id: Uuid) -> Result<Vec<UsageRecord>, sqlx::Error> {
    sqlx::query_as!(
        UsageRecord,
        "select metric, quantity from usage_records where job_id = $1 order by metric",
        job_id,
    )
    .fetch_all(db)
    .await
}
