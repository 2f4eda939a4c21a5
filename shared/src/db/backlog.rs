//! What waits, read for the metrics: queued and running jobs per queue, the
//! outbox, pending webhook deliveries. Operator data across every account,
//! the one exception to this module tree's account scoping: it returns
//! counts and ages, never a job.

use sqlx::PgPool;

/// The jobs of one queue (`model.lane`, a routing key).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueBacklog {
    pub queue: String,
    pub queued: i64,
    /// Claimed by a worker and not ended: the broker's unacknowledged side.
    pub running: i64,
    /// Age of the oldest queued job; 0 when none waits.
    pub oldest_queued_seconds: f64,
}

/// A table of rows waiting for a background task: how many, and the age
/// of the oldest (0 when none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pending {
    pub rows: i64,
    pub oldest_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    pub queues: Vec<QueueBacklog>,
    /// Job messages committed and not yet published.
    pub outbox: Pending,
    /// Webhook deliveries not yet delivered nor given up.
    pub webhooks: Pending,
}

/// One reading, on one connection; the partial indexes on queued and
/// running jobs and on pending deliveries keep it off the finished rows.
pub async fn read(db: &PgPool) -> Result<Backlog, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let queues: Vec<(Option<String>, i64, i64, f64)> = sqlx::query_as(
        "select queue,
                count(*) filter (where status = 'queued'),
                count(*) filter (where status = 'running'),
                coalesce(extract(epoch from now() - min(created_at)
                                 filter (where status = 'queued'))::float8, 0)
         from jobs where status in ('queued', 'running')
         group by queue order by queue",
    )
    .fetch_all(&mut *conn)
    .await?;
    let pending = |table: &str, filter: &str| {
        format!(
            "select count(*), coalesce(extract(epoch from now() - min(created_at))::float8, 0)
             from {table} {filter}"
        )
    };
    let (outbox_rows, outbox_age): (i64, f64) = sqlx::query_as(&pending("outbox", ""))
        .fetch_one(&mut *conn)
        .await?;
    let (webhook_rows, webhook_age): (i64, f64) =
        sqlx::query_as(&pending("webhook_deliveries", "where status = 'pending'"))
            .fetch_one(&mut *conn)
            .await?;
    Ok(Backlog {
        queues: queues
            .into_iter()
            // Jobs from before queues were recorded have none.
            .filter_map(|(queue, queued, running, oldest)| {
                Some(QueueBacklog {
                    queue: queue?,
                    queued,
                    running,
                    oldest_queued_seconds: oldest.max(0.0),
                })
            })
            .collect(),
        outbox: Pending {
            rows: outbox_rows,
            oldest_seconds: outbox_age.max(0.0),
        },
        webhooks: Pending {
            rows: webhook_rows,
            oldest_seconds: webhook_age.max(0.0),
        },
    })
}
