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
    let queues = sqlx::query!(
        r#"select queue as "queue?",
                count(*) filter (where status = 'queued') as "queued!",
                count(*) filter (where status = 'running') as "running!",
                coalesce(extract(epoch from now() - min(created_at)
                                 filter (where status = 'queued'))::float8, 0) as "oldest!"
         from jobs where status in ('queued', 'running')
         group by queue order by queue"#,
    )
    .fetch_all(&mut *conn)
    .await?;
    let outbox = sqlx::query!(
        r#"select count(*) as "rows!",
                  coalesce(extract(epoch from now() - min(created_at))::float8, 0) as "age!"
           from outbox"#,
    )
    .fetch_one(&mut *conn)
    .await?;
    let webhooks = sqlx::query!(
        r#"select count(*) as "rows!",
                  coalesce(extract(epoch from now() - min(created_at))::float8, 0) as "age!"
           from webhook_deliveries where status = 'pending'"#,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Backlog {
        queues: queues
            .into_iter()
            // Jobs from before queues were recorded have none.
            .filter_map(|row| {
                Some(QueueBacklog {
                    queue: row.queue?,
                    queued: row.queued,
                    running: row.running,
                    oldest_queued_seconds: row.oldest.max(0.0),
                })
            })
            .collect(),
        outbox: Pending {
            rows: outbox.rows,
            oldest_seconds: outbox.age.max(0.0),
        },
        webhooks: Pending {
            rows: webhooks.rows,
            oldest_seconds: webhooks.age.max(0.0),
        },
    })
}
