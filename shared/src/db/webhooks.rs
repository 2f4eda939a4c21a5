//! Webhook endpoints, events, deliveries and their attempt log. Events
//! and deliveries are created by the `jobs_webhook_events` trigger (and
//! [`enqueue_progress`]); the dispatcher leases due deliveries, sends them
//! and records each attempt here.
//!
//! Longer than most files: each statement is written out whole so that it
//! is checked at compile time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    /// Event types delivered; empty: all.
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Since when deliveries have been failing, if they are.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

/// Registers an endpoint, unless the account already has `max_endpoints`
/// (then `None`).
pub async fn create_endpoint(
    db: &PgPool,
    account_id: Uuid,
    url: &str,
    event_types: &[String],
    secret: &str,
    max_endpoints: i64,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let mut tx = db.begin().await?;
    // Registrations of one account take turns, so concurrent ones cannot
    // all see room under the cap.
    // `$1::uuid` first: the id is bound as a uuid, as before, and checked
    // as one.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('webhook_endpoints:' || $1::uuid::text, 0))",
        account_id,
    )
    .execute(&mut *tx)
    .await?;
    let count = sqlx::query_scalar!(
        r#"select count(*) as "count!" from webhook_endpoints where account_id = $1"#,
        account_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if count >= max_endpoints {
        return Ok(None);
    }
    let endpoint = sqlx::query_as!(
        Endpoint,
        "insert into webhook_endpoints (id, account_id, url, event_types, secret)
         values ($1, $2, $3, $4, $5)
         returning id, url, event_types, created_at, failing_since, disabled_at, disabled_reason",
        Uuid::now_v7(),
        account_id,
        url,
        event_types,
        secret,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(endpoint))
}

pub async fn list_endpoints(db: &PgPool, account_id: Uuid) -> Result<Vec<Endpoint>, sqlx::Error> {
    sqlx::query_as!(
        Endpoint,
        "select id, url, event_types, created_at, failing_since, disabled_at, disabled_reason
         from webhook_endpoints where account_id = $1 order by id",
        account_id,
    )
    .fetch_all(db)
    .await
}

pub async fn get_endpoint(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as!(
        Endpoint,
        "select id, url, event_types, created_at, failing_since, disabled_at, disabled_reason
         from webhook_endpoints where id = $1 and account_id = $2",
        id,
        account_id,
    )
    .fetch_optional(db)
    .await
}

/// Changes what is given; `enabled = Some(true)` re-enables a disabled
/// endpoint and forgets its failures.
pub async fn update_endpoint(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
    url: Option<&str>,
    event_types: Option<&[String]>,
    enabled: Option<bool>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    // `$5::boolean`: Postgres cannot tell the type from `$5 is null`, and
    // the macros describe the statement without the bound values' types.
    sqlx::query_as!(
        Endpoint,
        "update webhook_endpoints set
            url = coalesce($3, url),
            event_types = coalesce($4, event_types),
            disabled_at = case when $5::boolean is null then disabled_at
                               when $5 then null else coalesce(disabled_at, now()) end,
            disabled_reason = case when $5 is null then disabled_reason
                                   when $5 then null else 'disabled by the account' end,
            failing_since = case when $5 then null else failing_since end
         where id = $1 and account_id = $2
         returning id, url, event_types, created_at, failing_since, disabled_at, disabled_reason",
        id,
        account_id,
        url,
        event_types,
        enabled,
    )
    .fetch_optional(db)
    .await
}

pub async fn delete_endpoint(db: &PgPool, account_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from webhook_endpoints where id = $1 and account_id = $2",
        id,
        account_id,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Installs `secret`; the old one still signs for `grace_hours`.
pub async fn rotate_secret(
    db: &PgPool,
    account_id: Uuid,
    id: Uuid,
    secret: &str,
    grace_hours: i32,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update webhook_endpoints set previous_secret = secret, secret = $3,
                previous_secret_until = now() + make_interval(hours => $4)
         where id = $1 and account_id = $2",
        id,
        account_id,
        secret,
        grace_hours,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The account's secret for per-job `webhook_url` deliveries, made on
/// first use from `fresh`.
pub async fn job_secret(db: &PgPool, account_id: Uuid, fresh: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update accounts set webhook_secret = coalesce(webhook_secret, $2)
         where id = $1 returning webhook_secret as "webhook_secret!""#,
        account_id,
        fresh,
    )
    .fetch_one(db)
    .await
}

/// A `job.progress` event (the trigger covers state changes).
pub async fn enqueue_progress(
    db: &PgPool,
    job_id: Uuid,
    data: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select enqueue_job_webhook(j.id, j.account_id, 'job.progress', j.params ->> 'webhook_url', $2)
         from jobs j where j.id = $1",
        job_id,
        data,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A delivery leased for sending.
#[derive(Clone, sqlx::FromRow)]
pub struct Due {
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: Option<Uuid>,
    pub url: String,
    /// This attempt's number, from 1.
    pub attempts: i32,
    /// The exact body, the same on every attempt.
    pub payload: String,
    pub secret: Option<String>,
    pub previous_secret: Option<String>,
    pub endpoint_disabled: bool,
    pub failing_since: Option<DateTime<Utc>>,
    /// Seconds since the delivery was created, when it was leased: the
    /// start of its lag.
    pub age_seconds: f64,
}

/// How many deliveries may be in flight at once, across dispatchers.
#[derive(Debug, Clone, Copy)]
pub struct Concurrency {
    /// Per endpoint (or per job `webhook_url`).
    pub per_endpoint: i64,
    /// Per account, over all its endpoints.
    pub per_account: i64,
}

/// Everything but the signing secrets.
impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Due")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .field("endpoint_disabled", &self.endpoint_disabled)
            .field("failing_since", &self.failing_since)
            .finish_non_exhaustive()
    }
}

/// Leases up to `limit` due deliveries for `lease_seconds`: a dispatcher
/// that dies mid-send leaves them to another once the lease is over.
///
/// A delivery is only leased while its endpoint and its account have fewer
/// than `concurrency` deliveries in flight (leased by any dispatcher), so a
/// receiver that is slow or never answers holds a few sends, never the
/// dispatcher's capacity for other accounts.
pub async fn lease_due(
    db: &PgPool,
    limit: i64,
    lease_seconds: f64,
    concurrency: Concurrency,
) -> Result<Vec<Due>, sqlx::Error> {
    // `$4::bigint`: the load it is compared with is numeric (a sum), which
    // the macros would want bound as a decimal; it is bound as a bigint, as
    // the per-endpoint cap is.
    sqlx::query_as!(
        Due,
        r#"with ready as (
            select id, account_id, coalesce(endpoint_id::text, url) as target, next_attempt_at
            from webhook_deliveries
            where status = 'pending' and next_attempt_at <= now()
              and (locked_until is null or locked_until < now())),
         busy as (
            select account_id, coalesce(endpoint_id::text, url) as target, count(*) as n
            from webhook_deliveries
            where status = 'pending' and locked_until >= now()
            group by 1, 2),
         by_target as (
            select r.id, r.account_id, r.next_attempt_at,
                   row_number() over (partition by r.account_id, r.target
                                      order by r.next_attempt_at, r.id)
                   + coalesce((select b.n from busy b
                               where b.account_id = r.account_id and b.target = r.target), 0)
                   as load
            from ready r),
         by_account as (
            select t.id, t.next_attempt_at,
                   row_number() over (partition by t.account_id order by t.next_attempt_at, t.id)
                   + coalesce((select sum(b.n) from busy b where b.account_id = t.account_id), 0)
                   as load
            from by_target t where t.load <= $3),
         due as (
            select d.id from webhook_deliveries d join by_account a on a.id = d.id
            where a.load <= $4::bigint
            order by a.next_attempt_at
            limit $1
            for update of d skip locked)
         update webhook_deliveries d
            set locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
         from due where d.id = due.id
         returning d.id, d.event_id, d.endpoint_id, d.url, d.attempts,
            (select e.payload::text from webhook_events e where e.id = d.event_id)
                as "payload!",
            coalesce((select w.secret from webhook_endpoints w where w.id = d.endpoint_id),
                     (select a.webhook_secret from accounts a where a.id = d.account_id))
                as "secret?",
            (select w.previous_secret from webhook_endpoints w
              where w.id = d.endpoint_id and w.previous_secret_until > now())
                as "previous_secret?",
            coalesce((select w.disabled_at is not null from webhook_endpoints w
                      where w.id = d.endpoint_id), false) as "endpoint_disabled!",
            (select w.failing_since from webhook_endpoints w where w.id = d.endpoint_id)
                as "failing_since?",
            extract(epoch from now() - d.created_at)::float8 as "age_seconds!""#,
        limit,
        lease_seconds,
        concurrency.per_endpoint,
        concurrency.per_account,
    )
    .fetch_all(db)
    .await
}

/// One attempt's result, for the log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Delivered,
    RetryIn(f64),
    /// No more attempts.
    GiveUp,
    /// Give up and disable the endpoint, with the reason.
    Disable(String),
    /// The endpoint was disabled meanwhile: not sent.
    Cancel,
}

pub async fn record(
    db: &PgPool,
    due: &Due,
    attempt: Option<&Attempt>,
    next: &Next,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    if let Some(a) = attempt {
        sqlx::query!(
            "insert into webhook_attempts
                (delivery_id, status_code, latency_ms, error, response_excerpt)
             values ($1, $2, $3, $4, $5)",
            due.id,
            a.status_code.map(i32::from),
            a.latency_ms,
            a.error.as_deref().map(storable),
            a.response_excerpt.as_deref().map(storable),
        )
        .execute(&mut *tx)
        .await?;
    }
    let (status, delay) = match next {
        Next::Delivered => ("delivered", 0.0),
        Next::RetryIn(seconds) => ("pending", *seconds),
        Next::GiveUp | Next::Disable(_) => ("failed", 0.0),
        Next::Cancel => ("cancelled", 0.0),
    };
    sqlx::query!(
        "update webhook_deliveries set status = $2, locked_until = null,
            next_attempt_at = now() + make_interval(secs => $3),
            delivered_at = case when $2 = 'delivered' then now() end
         where id = $1",
        due.id,
        status,
        delay,
    )
    .execute(&mut *tx)
    .await?;
    if let Some(endpoint) = due.endpoint_id {
        match next {
            Next::Delivered => {
                sqlx::query!(
                    "update webhook_endpoints set failing_since = null where id = $1",
                    endpoint,
                )
                .execute(&mut *tx)
                .await?;
            }
            Next::Disable(reason) => {
                sqlx::query!(
                    "update webhook_endpoints set disabled_at = now(), disabled_reason = $2
                     where id = $1 and disabled_at is null",
                    endpoint,
                    reason,
                )
                .execute(&mut *tx)
                .await?;
                // Nothing more goes to a disabled endpoint.
                sqlx::query!(
                    "update webhook_deliveries set status = 'cancelled'
                     where endpoint_id = $1 and status = 'pending' and id <> $2",
                    endpoint,
                    due.id,
                )
                .execute(&mut *tx)
                .await?;
            }
            Next::RetryIn(_) | Next::GiveUp => {
                sqlx::query!(
                    "update webhook_endpoints set failing_since = coalesce(failing_since, now())
                     where id = $1",
                    endpoint,
                )
                .execute(&mut *tx)
                .await?;
            }
            Next::Cancel => {}
        }
    }
    tx.commit().await
}

/// Longest receiver-supplied text kept in the attempt log.
const STORED_TEXT_BYTES: usize = 2048;

/// A receiver's words as Postgres can always store them: `text` refuses NUL
/// (invalid UTF-8 is already replaced when the bytes are read), and the
/// length is capped. An attempt that could not be logged would leave its
/// delivery leased and sent again forever.
fn storable(text: &str) -> String {
    let mut end = text.len().min(STORED_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace('\0', "\u{fffd}")
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when none came back.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The first KiB of the receiver's answer.
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// The `webhook-id` of every attempt.
    pub event_id: String,
    pub event_type: String,
    pub job_id: Option<Uuid>,
    pub endpoint_id: Option<Uuid>,
    pub url: String,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

struct DeliveryRow {
    id: i64,
    event_id: String,
    event_type: String,
    job_id: Option<Uuid>,
    endpoint_id: Option<Uuid>,
    url: String,
    status: String,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
}

/// The newest deliveries of the account matching `filter` (an endpoint
/// or a job), each with its attempts, oldest attempt first.
pub async fn deliveries(
    db: &PgPool,
    account_id: Uuid,
    endpoint_id: Option<Uuid>,
    job_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    let rows = sqlx::query_as!(
        DeliveryRow,
        "select d.id, d.event_id, e.event_type, e.job_id, d.endpoint_id, d.url, d.status,
                d.created_at, d.next_attempt_at
         from webhook_deliveries d join webhook_events e on e.id = d.event_id
         where d.account_id = $1
           and ($2::uuid is null or d.endpoint_id = $2)
           and ($3::uuid is null or e.job_id = $3)
         order by d.id desc limit $4",
        account_id,
        endpoint_id,
        job_id,
        limit,
    )
    .fetch_all(db)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = sqlx::query!(
        "select delivery_id, attempted_at, status_code, latency_ms, error, response_excerpt
         from webhook_attempts where delivery_id = any($1) order by id",
        &ids,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeliveryView {
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| AttemptView {
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                    response_excerpt: a.response_excerpt.clone(),
                })
                .collect(),
            next_attempt_at: (r.status == "pending").then_some(r.next_attempt_at),
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            job_id: r.job_id,
            endpoint_id: r.endpoint_id,
            url: r.url,
            status: r.status,
            created_at: r.created_at,
        })
        .collect())
}

/// Sends an event again (a new delivery of the same event, so the same
/// `webhook-id`); `None` if the account has no such delivery.
pub async fn redeliver(
    db: &PgPool,
    account_id: Uuid,
    delivery_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        "insert into webhook_deliveries (event_id, account_id, endpoint_id, url)
         select d.event_id, d.account_id, d.endpoint_id,
                coalesce((select w.url from webhook_endpoints w where w.id = d.endpoint_id), d.url)
         from webhook_deliveries d where d.id = $1 and d.account_id = $2
         returning id",
        delivery_id,
        account_id,
    )
    .fetch_optional(db)
    .await?;
    if id.is_some() {
        sqlx::query!("select pg_notify('voxq_webhooks', '')")
            .execute(db)
            .await?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_signing_secret() {
        let due = Due {
            id: 1,
            event_id: "msg_1".into(),
            endpoint_id: None,
            url: "https://example.com/hook".into(),
            attempts: 1,
            payload: "{}".into(),
            secret: Some("whsec_current".into()),
            previous_secret: Some("whsec_previous".into()),
            endpoint_disabled: false,
            failing_since: None,
            age_seconds: 0.0,
        };
        let shown = format!("{due:?}");
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("msg_1"), "{shown}");
    }

    #[test]
    fn stored_text_has_no_nul_and_is_cut_on_a_character() {
        assert_eq!(storable("a\0b"), "a\u{fffd}b");
        let long = "é".repeat(STORED_TEXT_BYTES);
        let kept = storable(&long);
        assert!(kept.len() <= STORED_TEXT_BYTES);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
