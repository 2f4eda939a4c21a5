//! Before inference: claim the job, load or fetch its input, answer it from
//! the result cache where allowed, and decode its audio.

use std::sync::Arc;
use std::time::Instant;

use voxq_shared::audio;
use voxq_shared::db::accounts::ResultCachePolicy;
use voxq_shared::db::jobs::{self, StoredInput};
use voxq_shared::db::result_cache;
use voxq_shared::events::JobEvent;
use voxq_shared::job::{JobError, JobKind, JobMessage, JobStatus};
use voxq_shared::quota::ledger as quota_repo;
use voxq_shared::quota::Grown;
use voxq_shared::registry;

use super::claimed::{Input, Prepared};
use super::context::Context;
use super::failure::Failure;
use super::finish::{finish, redo_after_end};
use crate::engine::JobControl;
use crate::metrics::Phase;

/// Claims the job and loads its input. `Ok(None)`: nothing left to do
/// (already ended, or answered from the cache).
#[tracing::instrument(skip_all, fields(job_id = %message.job_id, account_id = %message.account_id))]
pub(super) async fn prepare(
    ctx: &Context,
    message: &JobMessage,
) -> Result<Option<Prepared>, (i32, Failure)> {
    let kind = message.kind.as_str();
    let claiming = Instant::now();
    let claim = match jobs::start(&ctx.db, message.job_id).await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            tracing::info!("job already ended or unknown; acknowledging redelivery");
            ctx.metrics.skipped.with_label_values(&[kind]).inc();
            redo_after_end(ctx, message).await;
            return Ok(None);
        }
        Err(e) => return Err((0, Failure::Transient(e.into()))),
    };
    let attempts = claim.attempts;
    ctx.held.claimed(message.job_id, attempts);
    ctx.metrics
        .phase(kind, &message.model, Phase::QueueWait, claim.waited_seconds);
    if attempts > ctx.max_attempts {
        // Every earlier claim ended without an outcome: the worker died
        // holding it (a decoder or engine crash, the OOM killer). Do not
        // hand it to another worker.
        tracing::error!(
            attempts,
            "job claimed more often than its attempts allow; giving up"
        );
        let error = JobError {
            code: "worker_crashed".into(),
            message: format!(
                "the job stopped {} workers before finishing; it was not retried again",
                attempts - 1
            ),
        };
        return Err((attempts, Failure::Poison(error)));
    }
    let fail = |f: Failure| (attempts, f);
    check_translator(ctx, message).await.map_err(fail)?;
    let started = Instant::now();
    let stored = jobs::load_input(&ctx.db, message.job_id)
        .await
        .map_err(|e| fail(Failure::Transient(e.into())))?
        .ok_or_else(|| {
            fail(Failure::permanent(
                "missing_input",
                "the job has no stored input",
            ))
        })?;
    let stored = match stored {
        StoredInput::Url {
            url,
            audio_limit_ms,
        } => fetch_audio(ctx, message, &url, audio_limit_ms)
            .await
            .map_err(fail)?,
        other => other,
    };
    let params = &message.params;
    let input_bytes: &[u8] = match &stored {
        StoredInput::Audio { data, .. } => data,
        StoredInput::Text(text) => text.as_bytes(),
        // Fetched above; never reaches here.
        StoredInput::Url { url, .. } => url.as_bytes(),
    };
    // Hash every parameter but those `result_shaping` clears (where the
    // result is posted): one added later cannot be forgotten here.
    let params_json = serde_json::to_vec(&params.result_shaping()).unwrap_or_default();
    let cache_key = result_cache::key(&[
        kind.as_bytes(),
        message.model.as_bytes(),
        &params_json,
        input_bytes,
    ]);
    let (input, audio) = match stored {
        StoredInput::Audio {
            data,
            duration_seconds,
        } if message.kind.takes_audio() => (
            Input::Audio {
                samples: Vec::new(),
                seconds: duration_seconds,
            },
            Some(data),
        ),
        StoredInput::Text(text) if !message.kind.takes_audio() => (Input::Text(text), None),
        _ => {
            let reason = "the stored input does not match the job kind";
            return Err(fail(Failure::permanent("invalid_input", reason)));
        }
    };
    let mut prepared = Prepared {
        message: message.clone(),
        attempts,
        cache_policy: claim.cache_policy,
        cache_key,
        input,
        started,
        control: Arc::new(JobControl::default()),
    };
    ctx.events
        .publish(&JobEvent {
            job_id: message.job_id,
            account_id: message.account_id,
            status: JobStatus::Running,
            progress: None,
        })
        .await;
    if prepared.cache_policy != ResultCachePolicy::Off {
        match result_cache::get(&ctx.db, &prepared.cache_key).await {
            Ok(Some(result)) => {
                ctx.metrics.cache_hits.with_label_values(&[kind]).inc();
                tracing::info!("answered from the result cache");
                return match finish(ctx, &prepared, result, 0.0, true).await {
                    Err(e) => Err((attempts, Failure::Transient(e.into()))),
                    Ok(()) => Ok(None),
                };
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "result cache unavailable; running the job"),
        }
    }
    if let (Some(data), Input::Audio { samples, .. }) = (audio, &mut prepared.input) {
        #[cfg(feature = "chaos")]
        ctx.faults.before_decode(message.job_id, &data);
        *samples = decode(data, ctx.max_audio_seconds).await.map_err(fail)?;
    }
    let prepared_in = claiming.elapsed().as_secs_f64();
    ctx.metrics
        .phase(kind, &message.model, Phase::Prepare, prepared_in);
    Ok(Some(prepared))
}

/// Speech translation into a language Whisper does not produce runs the
/// translation model on the worker that transcribes. Checked before any
/// work: a worker without that model hands the job back for one that has
/// both, or retries it later when no live worker has.
async fn check_translator(ctx: &Context, message: &JobMessage) -> Result<(), Failure> {
    let Some(translator) = message.params.translation_model.as_deref() else {
        return Ok(());
    };
    if message.kind != JobKind::SpeechTranslate || ctx.models.contains_key(translator) {
        return Ok(());
    }
    let workers = ctx
        .registry
        .workers()
        .await
        .map_err(|e| Failure::Transient(e.into()))?;
    let both = format!(
        "{:?} and the translation model {translator:?}",
        message.model
    );
    if registry::served_together(&workers, &message.model, translator) == Some(true) {
        Err(Failure::Elsewhere(format!(
            "this worker lacks {translator:?}; another serves {both}"
        )))
    } else {
        // The API refuses such jobs now; this one was accepted while a
        // worker had both, and one may be back (a rolling restart) before
        // the attempts run out.
        Err(Failure::Transient(anyhow::anyhow!(
            "no live worker serves both {both}"
        )))
    }
}

/// An `audio_url` input, fetched and probed as the API probes uploads; its
/// reservation grows to the length it turned out to have, within the
/// account's daily audio limit, or the job fails before inference.
async fn fetch_audio(
    ctx: &Context,
    message: &JobMessage,
    url: &str,
    audio_limit_ms: Option<u64>,
) -> Result<StoredInput, Failure> {
    let data = ctx.fetcher.fetch(url).await.map_err(Failure::fetch)?;
    // `Bytes` clones share one buffer; once the probe's is dropped, the
    // buffer becomes a `Vec` again without a copy.
    let data = bytes::Bytes::from(data);
    let probe_input = data.clone();
    let info = tokio::task::spawn_blocking(move || audio::probe(probe_input))
        .await
        .map_err(|e| Failure::permanent("invalid_audio", format!("the probe crashed: {e}")))?
        .map_err(|e| Failure::permanent(e.code(), e.to_string()))?;
    let data = Vec::from(data);
    // Bounded above only: the worker has no minimum-length setting.
    audio::check_length(&info, 0.0, ctx.max_audio_seconds)
        .map_err(|e| Failure::permanent(e.code(), e.to_string()))?;
    if let Some(limit_ms) = audio_limit_ms {
        let audio_ms = voxq_shared::quota::seconds_to_ms(info.duration_seconds);
        reserve_fetched(ctx, message, audio_ms, limit_ms).await?;
    }
    Ok(StoredInput::Audio {
        data,
        duration_seconds: info.duration_seconds,
    })
}

/// Grows the job's reservation to the audio it fetched. Redis first (its
/// in-flight marker makes a second try a no-op), then Postgres, the truth
/// counters are rebuilt from.
async fn reserve_fetched(
    ctx: &Context,
    message: &JobMessage,
    audio_ms: u64,
    limit_ms: u64,
) -> Result<(), Failure> {
    let transient = |e: anyhow::Error| Failure::Transient(e);
    let Some(reservation) = jobs::reservation(&ctx.db, message.account_id, message.job_id)
        .await
        .map_err(|e| transient(e.into()))?
    else {
        // Ended meanwhile (cancelled): the run finds out and stops.
        return Ok(());
    };
    if audio_ms <= reservation.amounts.audio_ms {
        return Ok(());
    }
    let grow = || ctx.quotas.grow_audio(&reservation, audio_ms, limit_ms);
    let mut grown = grow().await.map_err(|e| transient(e.into()))?;
    if grown == Grown::NeedsRebuild {
        quota_repo::rebuild(
            &ctx.db,
            &ctx.quotas,
            message.account_id,
            reservation.day,
            false,
        )
        .await
        .map_err(|e| transient(e.into()))?;
        grown = grow().await.map_err(|e| transient(e.into()))?;
    }
    match grown {
        Grown::OverLimit => Err(Failure::permanent(
            "quota_exceeded",
            format!(
                "the audio lasts {:.0} s, more than the account's daily audio quota has left",
                audio_ms as f64 / 1000.0
            ),
        )),
        Grown::Yes | Grown::NeedsRebuild => {
            if grown == Grown::NeedsRebuild {
                tracing::warn!("quota counters unavailable; billing the fetched audio unchecked");
            }
            jobs::set_reserved_audio(&ctx.db, message.job_id, audio_ms)
                .await
                .map_err(|e| transient(e.into()))
        }
    }
}

/// Decodes audio off the executor; a decoder panic fails this job only.
/// `max_seconds` bounds what the decoder may produce, whatever the file's
/// headers said when it was probed.
async fn decode(data: Vec<u8>, max_seconds: f64) -> Result<Vec<f32>, Failure> {
    tokio::task::spawn_blocking(move || audio::decode_to_mono_16k(data.into(), max_seconds))
        .await
        .map_err(|e| Failure::permanent("invalid_audio", format!("the decoder crashed: {e}")))?
        .map_err(|e| Failure::permanent(e.code(), e.to_string()))
}
