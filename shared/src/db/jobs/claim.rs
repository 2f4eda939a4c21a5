//! The worker's hold on a job: claiming it, loading its input, giving it
//! back, and the leases of long jobs (renewed, detached, expired and
//! requeued through the outbox).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::*;
use crate::job::{JobKind, JobParams};
use crate::queue::{Lane, Outgoing, Topology};
use crate::quota::{Amounts, Reservation};

/// Claims the job for a run. A job left `running` by a worker that died is
/// claimed again; a terminal job is not (`None`): redelivery is normal.
/// Nor is a running job whose lease is live: a live worker holds it, and
/// a second copy of its message (a relay's re-publish, say) must not run
/// it twice.
pub async fn start(db: &PgPool, id: Uuid) -> Result<Option<Claim>, sqlx::Error> {
    let row = sqlx::query!(
        r#"update jobs j set status = 'running', attempts = j.attempts + 1,
                started_at = coalesce(j.started_at, now())
         from accounts a
         where j.id = $1 and j.status in ('queued', 'running') and a.id = j.account_id
           and not (j.status = 'running' and j.detached and j.lease_until > now())
         returning j.attempts, a.result_cache,
                   extract(epoch from now() - j.created_at)::float8 as "waited_seconds!""#,
        id,
    )
    .fetch_optional(db)
    .await?;
    row.map(|row| {
        Ok(Claim {
            attempts: row.attempts,
            cache_policy: crate::db::accounts::parse_cache_policy(&row.result_cache)?,
            waited_seconds: row.waited_seconds.max(0.0),
        })
    })
    .transpose()
}

/// Puts a claimed job back in line after a transient failure.
pub async fn requeue(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    // Its message goes back to the broker: a lease left behind would run
    // out while the message waits, and the janitor would queue it twice.
    sqlx::query!(
        "update jobs set status = 'queued', detached = false, lease_until = null
         where id = $1 and status = 'running'",
        id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The job's stored audio or text (`None` if it has none).
pub async fn load_input(db: &PgPool, id: Uuid) -> Result<Option<StoredInput>, sqlx::Error> {
    struct Row {
        data: Option<Vec<u8>>,
        duration_seconds: Option<f64>,
        text: Option<String>,
        source_url: Option<String>,
        audio_limit_ms: Option<i64>,
    }
    let row = sqlx::query_as!(
        Row,
        "select data, duration_seconds, text, source_url, audio_limit_ms
         from job_inputs where job_id = $1",
        id,
    )
    .fetch_optional(db)
    .await?;
    Ok(
        row.and_then(|row| match (row.data, row.text, row.source_url) {
            (Some(data), _, _) => Some(StoredInput::Audio {
                data,
                duration_seconds: row.duration_seconds.unwrap_or(0.0),
            }),
            (None, Some(text), _) => Some(StoredInput::Text(text)),
            (None, None, Some(url)) => Some(StoredInput::Url {
                url,
                audio_limit_ms: row.audio_limit_ms.and_then(|v| u64::try_from(v).ok()),
            }),
            (None, None, None) => None,
        }),
    )
}

/// Gives a claimed job back untouched (its worker is stopping): queued
/// again, and the interrupted run does not count as an attempt.
pub async fn release_claim(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set status = 'queued', attempts = greatest(attempts - 1, 0),
                         detached = false, lease_until = null
         where id = $1 and status = 'running'",
        id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Gives back a job whose worker could not finish or requeue it (a stop
/// that ran out of time, a lost connection): queued again with the run not
/// counted; a long job's message, already acknowledged, goes out again
/// through the outbox. `attempts` is the caller's claim: a job claimed
/// again since is not the caller's to give back. Returns whether it was.
pub async fn hand_back(db: &PgPool, id: Uuid, attempts: i32) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let detached = sqlx::query_scalar!(
        "update jobs set attempts = greatest(attempts - 1, 0)
         where id = $1 and status = 'running' and attempts = $2 returning detached",
        id,
        attempts,
    )
    .fetch_optional(&mut *tx)
    .await?;
    match detached {
        None => return Ok(false),
        Some(true) => {
            requeue_detached_in(&mut tx, Some(id)).await?;
        }
        Some(false) => {
            // Its unacknowledged message returns when the channel closes.
            sqlx::query!(
                "update jobs set status = 'queued', lease_until = null where id = $1",
                id,
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Takes the job off the broker's watch: from now on its lease, not its
/// unacknowledged delivery, says that a worker has it. Returns false if
/// the job already ended (the delivery is only a redelivery).
pub async fn detach(db: &PgPool, id: Uuid, lease_seconds: f64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update jobs set detached = true, lease_until = now() + make_interval(secs => $2)
         where id = $1 and status in ('queued', 'running')",
        id,
        lease_seconds,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The job's quota reservation as Postgres holds it (`None` once ended).
pub async fn reservation(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select quota_day, reserved as "reserved: sqlx::types::Json<Amounts>" from jobs
         where id = $1 and account_id = $2 and status in ('queued', 'running')"#,
        id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Reservation {
        job_id: id,
        account_id,
        day: row.quota_day,
        amounts: row.reserved.0,
    }))
}

/// Sets the audio the open job reserves (its fetched length).
pub async fn set_reserved_audio(db: &PgPool, id: Uuid, audio_ms: u64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set reserved = jsonb_set(reserved, '{audio_ms}', to_jsonb($2::bigint))
         where id = $1 and status in ('queued', 'running')",
        id,
        i64::try_from(audio_ms).unwrap_or(i64::MAX),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Extends the leases of those of `ids` that are detached and open: the
/// heartbeat of a worker that holds them.
pub async fn renew_leases(
    db: &PgPool,
    ids: &[Uuid],
    lease_seconds: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set lease_until = now() + make_interval(secs => $2)
         where id = any($1) and detached and status in ('queued', 'running')",
        ids,
        lease_seconds,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Puts a long job whose delivery was already acknowledged back in line
/// (its worker gave it back, or could not publish its retry): queued
/// again, its message in the outbox (the relay publishes it). Returns
/// false if it had ended.
pub async fn requeue_detached(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let requeued = requeue_detached_in(&mut tx, Some(id)).await?;
    tx.commit().await?;
    Ok(requeued == 1)
}

/// Detached jobs whose lease ran out (their worker died or hung), back
/// in line; returns how many.
pub async fn requeue_expired_leases(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let requeued = requeue_detached_in(&mut tx, None).await?;
    tx.commit().await?;
    Ok(requeued)
}

async fn requeue_detached_in(tx: &mut PgConnection, id: Option<Uuid>) -> Result<u64, sqlx::Error> {
    struct Row {
        id: Uuid,
        account_id: Uuid,
        kind: String,
        params: sqlx::types::Json<JobParams>,
        queue: Option<String>,
    }
    let rows = sqlx::query_as!(
        Row,
        r#"update jobs set status = 'queued', detached = false, lease_until = null
         where id in (select id from jobs
                      where status in ('queued', 'running')
                        and (($1::uuid is null and detached and lease_until < now())
                             or id = $1)
                      for update skip locked)
         returning id, account_id, kind, params as "params: sqlx::types::Json<JobParams>",
                   queue"#,
        id,
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let kind = JobKind::parse(&row.kind).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown job kind {:?}", row.kind).into())
        })?;
        // A job queued before lanes existed has no queue: the long lane.
        let routing_key = row.queue.clone().unwrap_or_else(|| {
            let model = row.params.0.model.as_deref().unwrap_or_default();
            Topology::routing_key(model, Lane::Long)
        });
        let message = Outgoing::new(
            row.id,
            row.account_id,
            kind,
            row.params.0.clone(),
            routing_key,
        )
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        crate::db::outbox::insert(&mut *tx, &message).await?;
    }
    Ok(rows.len() as u64)
}

/// Long jobs that ended while detached, and whose lease has run out since:
/// `limit` at most, each with its reservation and the usage it was billed
/// (rounded per record, as the worker adds it to Redis). Their worker
/// settles the reservation in Redis right after its commit, unless it dies
/// in between; and no message comes back then, as one does for a short job
/// (the delivery was acknowledged at `detach`). So the API's janitor
/// settles them again (only the first settlement counts) and then
/// [`forget_ended_leases`]. An expired lease leaves the worker that time:
/// one alive has settled long before.
pub async fn ended_with_lease(
    db: &PgPool,
    limit: i64,
) -> Result<Vec<(Reservation, Amounts)>, sqlx::Error> {
    // The sums of `quota::ledger::snapshot`, per job.
    let rows = sqlx::query!(
        r#"select j.id, j.account_id, j.quota_day,
                  j.reserved as "reserved: sqlx::types::Json<Amounts>",
                  coalesce(sum(ceil(u.quantity * 1000)) filter (where u.metric = 'audio_seconds'), 0)::bigint
                      as "audio_ms!",
                  coalesce(sum(ceil(u.quantity * 1000)) filter (where u.metric = 'processing_seconds'), 0)::bigint
                      as "processing_ms!",
                  coalesce(sum(ceil(u.quantity)) filter (where u.metric = 'text_chars'), 0)::bigint
                      as "text_chars!"
         from jobs j left join usage_records u on u.job_id = j.id
         where j.detached and j.lease_until < now() and j.status not in ('queued', 'running')
         group by j.id
         limit $1"#,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let reservation = Reservation {
                job_id: row.id,
                account_id: row.account_id,
                day: row.quota_day,
                amounts: row.reserved.0,
            };
            let used = Amounts::from_sums(row.audio_ms, row.text_chars, row.processing_ms);
            (reservation, used)
        })
        .collect())
}

/// Ended jobs whose reservation is settled leave the leases' index.
pub async fn forget_ended_leases(db: &PgPool, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set detached = false, lease_until = null
         where id = any($1) and status not in ('queued', 'running')",
        ids,
    )
    .execute(db)
    .await?;
    Ok(())
}
