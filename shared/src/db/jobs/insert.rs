//! A new job with its input, in the submission's transaction: audio
//! streamed in with `COPY`, text and URLs inline.

use sqlx::PgConnection;
use uuid::Uuid;

use super::*;
use crate::job::{JobError, JobKind, JobParams, JobView};
use crate::quota::Reservation;

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
