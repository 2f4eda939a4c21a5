use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::accounts::ResultCachePolicy;
use crate::job::{JobError, JobKind, JobParams, JobStatus, JobView, UsageMetric};
use crate::queue::{Lane, Outgoing, Topology};
use crate::quota::{Amounts, Reservation};

/// The audio a job was submitted with, as probed by the API.
#[derive(Clone, Copy)]
pub struct NewInput<'a> {
    pub content_type: &'a str,
    pub codec: &'a str,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_seconds: f64,
    pub data: AudioData<'a>,
}

/// Where an upload's bytes are.
#[derive(Clone, Copy)]
pub enum AudioData<'a> {
    /// Small enough to travel with the job's row, in one statement.
    Bytes(&'a [u8]),
    /// Spooled to a file by the API; streamed into Postgres with `COPY`,
    /// so that a large upload is never held whole in the API's memory.
    File { file: &'a std::fs::File, len: u64 },
}

/// A job's stored input.
pub enum StoredInput {
    Audio {
        data: Vec<u8>,
        duration_seconds: f64,
    },
    Text(String),
    /// Audio the worker fetches, and the account's daily audio limit when
    /// it was submitted (absent for jobs submitted before it was kept).
    Url {
        url: String,
        audio_limit_ms: Option<u64>,
    },
}

/// What a worker learns when it claims a job.
pub struct Claim {
    pub attempts: i32,
    pub cache_policy: ResultCachePolicy,
    /// Seconds from the job's acceptance to this claim, by the database's
    /// clock (workers' clocks may differ).
    pub waited_seconds: f64,
}

struct JobRow {
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
}

impl JobRow {
    fn into_view(self) -> Result<JobView, sqlx::Error> {
        let decode = |what: &str, value: &str| {
            sqlx::Error::Decode(format!("unknown job {what} {value:?} in database").into())
        };
        Ok(JobView {
            id: self.id,
            kind: JobKind::parse(&self.kind).ok_or_else(|| decode("kind", &self.kind))?,
            status: JobStatus::parse(&self.status).ok_or_else(|| decode("status", &self.status))?,
            params: self.params.0,
            result: self.result,
            error: self.error.map(|e| e.0),
            attempts: self.attempts,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            progress: None,
            queue: None,
            data_deleted_at: self.data_deleted_at,
        })
    }
}

// The macros take literal SQL only, so each query spells out JobRow's
// columns; the JSON ones are named with their Rust types (jsonb decodes to
// a JSON value otherwise).

/// What a job is submitted with.
#[derive(Clone, Copy)]
pub enum NewJobInput<'a> {
    Audio(NewInput<'a>),
    Text(&'a str),
    /// An `audio_url`, already checked by the SSRF guard, and the account's
    /// daily audio limit.
    Url {
        url: &'a str,
        audio_limit_ms: u64,
    },
}

/// Inserts a queued job, its input and its quota reservation in the
/// caller's transaction.
pub async fn insert(
    tx: &mut PgConnection,
    reservation: &Reservation,
    kind: JobKind,
    params: &JobParams,
    queue: &str,
    input: NewJobInput<'_>,
) -> Result<JobView, sqlx::Error> {
    // One statement for the job and its input: a round trip less on the
    // submit path, which is bound by Postgres round trips. One statement
    // per kind of input, as the macros take literal SQL only.
    // Json<T> is not the macros' jsonb type (a JSON value): bound as is.
    let params = sqlx::types::Json(params);
    let amounts = sqlx::types::Json(reservation.amounts);
    let row = match input {
        NewJobInput::Audio(NewInput {
            data: AudioData::File { .. },
            ..
        }) => {
            sqlx::query_as!(
                JobRow,
                r#"insert into jobs (id, account_id, kind, params, quota_day, reserved, queue)
                   values ($1, $2, $3, $4, $5, $6, $7)
                   returning id, kind, status, params as "params: sqlx::types::Json<JobParams>",
                             result, error as "error: sqlx::types::Json<JobError>", attempts,
                             created_at, started_at, finished_at, data_deleted_at"#,
                reservation.job_id,
                reservation.account_id,
                kind.as_str(),
                params as _,
                reservation.day,
                amounts as _,
                queue,
            )
            .fetch_one(&mut *tx)
            .await?
        }
        NewJobInput::Audio(
            input @ NewInput {
                data: AudioData::Bytes(data),
                ..
            },
        ) => {
            let sample_rate = i32::try_from(input.sample_rate).unwrap_or(i32::MAX);
            let size_bytes = i64::try_from(data.len()).unwrap_or(i64::MAX);
            sqlx::query_as!(
                JobRow,
                r#"with job as (
                       insert into jobs (id, account_id, kind, params, quota_day, reserved, queue)
                       values ($1, $2, $3, $4, $5, $6, $7)
                       returning id, kind, status,
                                 params as "params: sqlx::types::Json<JobParams>", result,
                                 error as "error: sqlx::types::Json<JobError>", attempts,
                                 created_at, started_at, finished_at, data_deleted_at),
                   input as (insert into job_inputs
                       (job_id, content_type, codec, sample_rate, channels, duration_seconds,
                        size_bytes, data)
                       values ($1, $8, $9, $10, $11, $12, $13, $14))
                   select * from job"#,
                reservation.job_id,
                reservation.account_id,
                kind.as_str(),
                params as _,
                reservation.day,
                amounts as _,
                queue,
                input.content_type,
                input.codec,
                sample_rate,
                i32::from(input.channels),
                input.duration_seconds,
                size_bytes,
                data,
            )
            .fetch_one(&mut *tx)
            .await?
        }
        NewJobInput::Text(text) => {
            let size_bytes = i64::try_from(text.len()).unwrap_or(i64::MAX);
            sqlx::query_as!(
                JobRow,
                r#"with job as (
                       insert into jobs (id, account_id, kind, params, quota_day, reserved, queue)
                       values ($1, $2, $3, $4, $5, $6, $7)
                       returning id, kind, status,
                                 params as "params: sqlx::types::Json<JobParams>", result,
                                 error as "error: sqlx::types::Json<JobError>", attempts,
                                 created_at, started_at, finished_at, data_deleted_at),
                   input as (insert into job_inputs (job_id, content_type, size_bytes, text)
                       values ($1, 'text/plain; charset=utf-8', $8, $9))
                   select * from job"#,
                reservation.job_id,
                reservation.account_id,
                kind.as_str(),
                params as _,
                reservation.day,
                amounts as _,
                queue,
                size_bytes,
                text,
            )
            .fetch_one(&mut *tx)
            .await?
        }
        NewJobInput::Url {
            url,
            audio_limit_ms,
        } => {
            let audio_limit_ms = i64::try_from(audio_limit_ms).unwrap_or(i64::MAX);
            sqlx::query_as!(
                JobRow,
                r#"with job as (
                       insert into jobs (id, account_id, kind, params, quota_day, reserved, queue)
                       values ($1, $2, $3, $4, $5, $6, $7)
                       returning id, kind, status,
                                 params as "params: sqlx::types::Json<JobParams>", result,
                                 error as "error: sqlx::types::Json<JobError>", attempts,
                                 created_at, started_at, finished_at, data_deleted_at),
                   input as (insert into job_inputs
                       (job_id, content_type, size_bytes, source_url, audio_limit_ms)
                       values ($1, 'text/uri-list', 0, $8, $9))
                   select * from job"#,
                reservation.job_id,
                reservation.account_id,
                kind.as_str(),
                params as _,
                reservation.day,
                amounts as _,
                queue,
                url,
                audio_limit_ms,
            )
            .fetch_one(&mut *tx)
            .await?
        }
    };
    if let NewJobInput::Audio(
        input @ NewInput {
            data: AudioData::File { file, len },
            ..
        },
    ) = input
    {
        copy_audio_in(tx, reservation.job_id, &input, file, len).await?;
    }
    row.into_view()
}

/// Bytes of a spooled upload sent per `COPY` message (twice that as hex).
const COPY_CHUNK: usize = 256 * 1024;

/// Streams a spooled upload into `job_inputs` with `COPY … FROM STDIN`
/// (text format, the file as hex), a chunk at a time.
async fn copy_audio_in(
    tx: &mut PgConnection,
    job_id: Uuid,
    input: &NewInput<'_>,
    file: &std::fs::File,
    len: u64,
) -> Result<(), sqlx::Error> {
    use std::io::Seek;
    use tokio::io::AsyncReadExt;

    // A handle to read through; it shares the file's offset, which the
    // probe left at the end.
    let mut file = file.try_clone()?;
    file.rewind()?;
    let mut file = tokio::fs::File::from_std(file).take(len);
    let head = format!(
        "{job_id}\t{}\t{}\t{}\t{}\t{}\t{len}\t\\\\x",
        copy_text(input.content_type),
        copy_text(input.codec),
        input.sample_rate,
        input.channels,
        input.duration_seconds,
    );
    // Runtime-checked: COPY is not a statement the macros can prepare.
    let mut copy = tx
        .copy_in_raw(
            "copy job_inputs
                 (job_id, content_type, codec, sample_rate, channels, duration_seconds, size_bytes, data)
             from stdin",
        )
        .await?;
    copy.send(head.into_bytes()).await?;
    let mut chunk = vec![0u8; COPY_CHUNK];
    let mut sent: u64 = 0;
    loop {
        let read = match file.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = copy.abort("reading the spooled upload failed").await;
                return Err(e.into());
            }
        };
        sent += read as u64;
        copy.send(hex::encode(&chunk[..read]).into_bytes()).await?;
    }
    if sent != len {
        let _ = copy
            .abort("the spooled upload is shorter than announced")
            .await;
        return Err(sqlx::Error::Protocol(format!(
            "spooled upload holds {sent} bytes, {len} expected"
        )));
    }
    copy.send(&b"\n"[..]).await?;
    copy.finish().await?;
    Ok(())
}

/// A value in `COPY`'s text format: its delimiter, line breaks and escape
/// character escaped.
fn copy_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

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
            cache_policy: super::accounts::parse_cache_policy(&row.result_cache)?,
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

/// Those of `ids` cancelled meanwhile (a running batch's watcher asks).
pub async fn cancelled(db: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from jobs where id = any($1) and status = 'cancelled'",
        ids,
    )
    .fetch_all(db)
    .await
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
        super::outbox::insert(&mut *tx, &message).await?;
    }
    Ok(rows.len() as u64)
}
