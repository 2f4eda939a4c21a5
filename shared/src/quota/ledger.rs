//! The quotas' truth in Postgres: counters rebuilt from jobs and usage
//! records, the lock that keeps rebuilds and submissions apart, and the
//! daily usage report.
//!
//! Submissions hold a *shared* advisory lock on their account from the
//! moment they reserve in Redis until their job row commits; a rebuild
//! holds the *exclusive* lock while it reads Postgres and installs the
//! counters. So a rebuild never misses a reservation that Redis has seen
//! but Postgres not yet, and no reservation lands between its read and its
//! install.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Amounts, Counters, Quotas, Reservation};

/// The advisory lock key of an account's quota counters.
fn lock_key(account: Uuid) -> i64 {
    let (hi, lo) = account.as_u64_pair();
    // Only a collision of two accounts' keys is possible, and it only
    // serialises them a little.
    (hi ^ lo) as i64
}

/// Starts a submission's transaction holding the account's shared lock.
/// Sent as one simple query (`begin; select …`): a round trip less on the
/// submit path. The key is an integer we computed, never client input.
// Runtime-checked: `begin_with` sends its statement as the transaction's
// first simple query (one round trip for both), which no macro can describe.
pub async fn begin_submission(
    db: &PgPool,
    account: Uuid,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    db.begin_with(format!(
        "begin; select pg_advisory_xact_lock_shared({})",
        lock_key(account)
    ))
    .await
}

struct InflightRow {
    id: Uuid,
    quota_day: NaiveDate,
    reserved: sqlx::types::Json<Amounts>,
}

/// What Postgres says the counters are for `account` on `day`.
pub async fn snapshot(
    conn: &mut PgConnection,
    account: Uuid,
    day: NaiveDate,
) -> Result<Counters, sqlx::Error> {
    let requests = sqlx::query_scalar!(
        r#"select count(*) as "requests!" from jobs where account_id = $1 and quota_day = $2"#,
        account,
        day,
    )
    .fetch_one(&mut *conn)
    .await?;
    // Rounded per row, exactly as the worker adds them to Redis.
    let used = sqlx::query!(
        r#"select
            coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'audio_seconds'), 0)::bigint
                as "audio_ms!",
            coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'processing_seconds'), 0)::bigint
                as "processing_ms!",
            coalesce(sum(ceil(quantity)) filter (where metric = 'text_chars'), 0)::bigint
                as "text_chars!"
         from usage_records where account_id = $1 and usage_day = $2"#,
        account,
        day,
    )
    .fetch_one(&mut *conn)
    .await?;
    let (audio_ms, processing_ms, text_chars) =
        (used.audio_ms, used.processing_ms, used.text_chars);
    let rows = sqlx::query_as!(
        InflightRow,
        r#"select id, quota_day as "quota_day!", reserved as "reserved!: sqlx::types::Json<Amounts>"
         from jobs
         where account_id = $1 and status in ('queued', 'running')"#,
        account,
    )
    .fetch_all(&mut *conn)
    .await?;
    let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut counters = Counters {
        requests: to_u64(requests),
        used: Amounts::from_sums(audio_ms, text_chars, processing_ms),
        ..Counters::default()
    };
    for row in rows {
        let amounts = row.reserved.0;
        if row.quota_day == day {
            counters.reserved.audio_ms += amounts.audio_ms;
            counters.reserved.text_chars += amounts.text_chars;
            counters.reserved.processing_ms += amounts.processing_ms;
        }
        counters.inflight.push(Reservation {
            job_id: row.id,
            account_id: account,
            day: row.quota_day,
            amounts,
        });
    }
    Ok(counters)
}

/// Recomputes the account's counters for `day` from Postgres and installs
/// them in Redis, under the exclusive lock. With `only_if_missing`, counters
/// that another request rebuilt meanwhile are kept (a burst of requests
/// after a Redis flush rebuilds once).
pub async fn rebuild(
    db: &PgPool,
    quotas: &Quotas,
    account: Uuid,
    day: NaiveDate,
    only_if_missing: bool,
) -> Result<Counters, crate::Error> {
    let mut tx = db.begin().await?;
    // In the `from` clause: the function returns `void`, a type no Rust
    // value decodes.
    sqlx::query!(
        "select 1 as locked from pg_advisory_xact_lock($1)",
        lock_key(account)
    )
    .fetch_one(&mut *tx)
    .await?;
    if only_if_missing {
        if let Some(current) = quotas.read(account, day).await? {
            return Ok(current);
        }
    }
    let counters = snapshot(&mut tx, account, day).await?;
    quotas.install(account, day, &counters).await?;
    tx.commit().await?;
    tracing::info!(%account, %day, "quota counters rebuilt from Postgres");
    Ok(counters)
}

/// One day of an account's recorded usage.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct DailyUsage {
    pub day: NaiveDate,
    pub requests: i64,
    pub audio_seconds: f64,
    pub text_chars: f64,
    pub processing_seconds: f64,
}

/// Daily rows for `from..=to` (days without jobs or usage are left out).
pub async fn daily(
    db: &PgPool,
    account: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyUsage>, sqlx::Error> {
    sqlx::query_as!(
        DailyUsage,
        r#"with requests as (
            select quota_day as day, count(*) as requests from jobs
            where account_id = $1 and quota_day between $2 and $3 group by quota_day
         ), usage as (
            select usage_day as day,
                   coalesce(sum(quantity) filter (where metric = 'audio_seconds'), 0) as audio_seconds,
                   coalesce(sum(quantity) filter (where metric = 'text_chars'), 0) as text_chars,
                   coalesce(sum(quantity) filter (where metric = 'processing_seconds'), 0) as processing_seconds
            from usage_records
            where account_id = $1 and usage_day between $2 and $3 group by usage_day
         )
         select coalesce(r.day, u.day) as "day!",
                coalesce(r.requests, 0) as "requests!",
                coalesce(u.audio_seconds, 0) as "audio_seconds!",
                coalesce(u.text_chars, 0) as "text_chars!",
                coalesce(u.processing_seconds, 0) as "processing_seconds!"
         from requests r full join usage u on u.day = r.day
         order by 1"#,
        account,
        from,
        to,
    )
    .fetch_all(db)
    .await
}
