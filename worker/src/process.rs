//! Jobs, from claim to committed result: claim, load the input, answer
//! from the result cache or run the engine (several jobs of one model in
//! one call), then one transaction for result, usage and status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use voxq_shared::audio;
use voxq_shared::cache::JobCache;
use voxq_shared::db::accounts::ResultCachePolicy;
use voxq_shared::db::jobs::{self, StoredInput};
use voxq_shared::db::result_cache;
use voxq_shared::db::webhooks;
use voxq_shared::events::{Events, JobEvent, Progress};
use voxq_shared::job::{
    JobError, JobKind, JobMessage, JobStatus, JobView, Rendition, Segment, TranscriptResult,
    TranslationResult, UsageMetric, VadParams,
};
use voxq_shared::models::{self, Registry};
use voxq_shared::queue::Publisher;
use voxq_shared::quota::ledger as quota_repo;
use voxq_shared::quota::{Amounts, Grown, Quotas, Reservation};

use crate::engine::vad::{self, NoVadModel, Vad};
use crate::engine::{
    Engine, JobControl, Stopped, Task, TranscribeOptions, TranslateRequest, Unsupported,
};
use crate::fetch::{FetchError, Fetcher};
use crate::metrics::{Metrics, Phase};
use crate::Served;

pub struct Context {
    pub db: PgPool,
    pub cache: JobCache,
    pub quotas: Quotas,
    pub models: HashMap<String, Served>,
    /// Live workers and their models (where else a job could run).
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub max_attempts: i32,
    /// Publishes delayed retries.
    pub retries: Publisher,
    /// Publishes job events (running, progress, ended).
    pub events: Events,
    /// Cancelled when a stopping worker's grace period is over: the jobs
    /// still running stop at their next safe point and go back in line.
    pub interrupt: CancellationToken,
    /// How long a long job's lease lasts between renewals.
    pub lease_seconds: f64,
    /// Fetches `audio_url` inputs.
    pub fetcher: Fetcher,
    /// Longest audio an `audio_url` may hold, in seconds.
    pub max_audio_seconds: f64,
    /// Chaos testing: abort when an input contains these bytes.
    pub chaos_abort_on: Option<Vec<u8>>,
    /// Voice activity detection, when the worker has the model.
    pub vad: Option<Arc<Vad>>,
    /// Jobs that do not say `vad` get it above this many seconds.
    pub vad_auto_seconds: f64,
    /// The jobs of the batches in progress.
    pub held: Held,
}

/// The jobs this worker has claimed and not yet settled, with the attempt
/// number of each claim. Whatever is left when a lane is aborted (a
/// stopping worker that gave up waiting, a lost connection) is handed
/// back.
#[derive(Debug, Default)]
pub struct Held(std::sync::Mutex<HashMap<Uuid, i32>>);

impl Held {
    fn claimed(&self, id: Uuid, attempts: i32) {
        if let Ok(mut held) = self.0.lock() {
            held.insert(id, attempts);
        }
    }

    fn settled(&self, ids: &[Uuid]) {
        if let Ok(mut held) = self.0.lock() {
            for id in ids {
                held.remove(id);
            }
        }
    }

    /// Hands every job still held back to the queue, as it was: the run
    /// did not count as an attempt. A job that ended, or that another
    /// worker claimed since (its attempt number moved on), is left alone.
    pub async fn hand_back(&self, db: &PgPool) {
        let held = match self.0.lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => return,
        };
        for (id, attempts) in held {
            match jobs::hand_back(db, id, attempts).await {
                Ok(true) => tracing::info!(job_id = %id, "interrupted job handed back"),
                Ok(false) => {}
                Err(e) => {
                    // Its lease (long jobs) or its unacknowledged message
                    // (short ones) still brings it back.
                    tracing::warn!(job_id = %id, error = %e, "handing an interrupted job back")
                }
            }
        }
    }
}

/// What the consumer should do with the delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Done, failed for good, or already ended: acknowledge.
    Ack,
    /// Worth another try, after a delay that grows with `attempts`.
    Retry { error: anyhow::Error, attempts: i32 },
    /// The job has failed after its last attempt, or crashed every worker
    /// that took it: reject the message into the dead-letter queue.
    DeadLetter,
    /// The worker is stopping: the job goes back in line as it was.
    Requeue,
}

enum Failure {
    /// Retrying cannot help (bad input): fail now.
    Permanent(JobError),
    /// The job crashed workers: fail now and dead-letter its message.
    Poison(JobError),
    /// The engine stopped at a safe point when asked (cancelled job, or a
    /// stopping worker).
    Stopped,
    /// Retrying may help (a dependency hiccup, a crashed engine call).
    Transient(anyhow::Error),
    /// Another worker can run the job and this one cannot: hand it back,
    /// not counted as an attempt.
    Elsewhere(String),
}

fn permanent(code: &str, message: impl Into<String>) -> Failure {
    Failure::Permanent(JobError {
        code: code.into(),
        message: message.into(),
    })
}

/// An engine error: a request the model cannot serve is permanent,
/// anything else may pass.
fn engine_failure(e: anyhow::Error) -> Failure {
    if e.is::<Stopped>() {
        return Failure::Stopped;
    }
    if e.is::<NoVadModel>() {
        return permanent("vad_unavailable", e.to_string());
    }
    match e.downcast_ref::<Unsupported>() {
        Some(unsupported) => permanent("unsupported", unsupported.to_string()),
        None => Failure::Transient(e),
    }
}

/// The decoded input of a claimed job.
enum Input {
    Audio { samples: Vec<f32>, seconds: f64 },
    Text(String),
}

/// A claimed job ready for inference.
struct Prepared {
    message: JobMessage,
    attempts: i32,
    cache_policy: ResultCachePolicy,
    cache_key: [u8; 32],
    input: Input,
    started: Instant,
    control: Arc<JobControl>,
}

impl Prepared {
    /// What this job is billed per unit of work: seconds of audio or
    /// characters of text.
    fn billed(&self) -> (UsageMetric, f64) {
        match &self.input {
            Input::Audio { seconds, .. } => (UsageMetric::AudioSeconds, *seconds),
            Input::Text(text) => (UsageMetric::TextChars, text.chars().count() as f64),
        }
    }
}

/// Runs `messages` (all for one model) and says what to do with each
/// delivery, in order.
pub async fn process_batch(ctx: &Context, messages: &[JobMessage]) -> Vec<Outcome> {
    // Leases are renewed from the claim to the last commit, whatever the
    // jobs are doing: fetching, decoding, or inference that reports no
    // progress.
    let ids: Vec<Uuid> = messages.iter().map(|m| m.job_id).collect();
    let _held = InProgress::count(ctx, messages);
    let heartbeat = Companion(tokio::spawn(heartbeat(
        ctx.db.clone(),
        ids.clone(),
        ctx.lease_seconds,
    )));
    let outcomes = run_batch(ctx, messages).await;
    drop(heartbeat);
    ctx.held.settled(&ids);
    outcomes
}

/// The batch's jobs counted in `jobs_in_progress` for as long as it lives,
/// aborted or not.
struct InProgress {
    gauge: prometheus::IntGauge,
    jobs: i64,
}

impl InProgress {
    fn count(ctx: &Context, messages: &[JobMessage]) -> Option<Self> {
        let model = &messages.first()?.model;
        let gauge = ctx.metrics.in_progress.with_label_values(&[model]);
        let jobs = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        gauge.add(jobs);
        Some(Self { gauge, jobs })
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.gauge.sub(self.jobs);
    }
}

/// A task that lives only as long as the batch it serves. Dropped with the
/// batch's future, it is aborted too: a lane aborted mid-batch must not
/// leave a heartbeat renewing its jobs' leases for the life of the process
/// (they would never come back), nor a watcher polling for them.
struct Companion(tokio::task::JoinHandle<()>);

impl Drop for Companion {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the leases of the batch's detached jobs until aborted, a few
/// times per lease so that one slow round trip never lets one lapse.
async fn heartbeat(db: PgPool, ids: Vec<Uuid>, lease_seconds: f64) {
    let every = std::time::Duration::from_secs_f64((lease_seconds / 4.0).clamp(0.1, 15.0));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = jobs::renew_leases(&db, &ids, lease_seconds).await {
            tracing::warn!(error = %e, "renewing job leases");
        }
    }
}

async fn run_batch(ctx: &Context, messages: &[JobMessage]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = messages.iter().map(|_| None).collect();
    let mut ready: Vec<(usize, Prepared)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match prepare(ctx, message).await {
            Ok(Some(prepared)) => ready.push((i, prepared)),
            Ok(None) => outcomes[i] = Some(Outcome::Ack),
            Err((attempts, failure)) => {
                outcomes[i] = Some(handle_failure(ctx, message, attempts, failure).await)
            }
        }
    }
    if !ready.is_empty() {
        let (indices, mut prepared): (Vec<usize>, Vec<Prepared>) = ready.into_iter().unzip();
        let watcher = Companion(tokio::spawn(watch(
            ctx.db.clone(),
            ctx.events.clone(),
            ctx.cache.clone(),
            ctx.interrupt.clone(),
            prepared.iter().map(Watched::of).collect(),
        )));
        let inferring = Instant::now();
        let results = infer(ctx, &mut prepared).await;
        let inference = inferring.elapsed().as_secs_f64();
        drop(watcher);
        for ((i, job), (result, processing)) in indices.into_iter().zip(prepared).zip(results) {
            let (kind, model) = (job.message.kind.as_str(), job.message.model.as_str());
            let outcome = match result {
                Ok(value) => {
                    ctx.metrics.phase(kind, model, Phase::Inference, inference);
                    let writing = Instant::now();
                    let outcome = finish(ctx, &job, value, processing, false).await;
                    let written = writing.elapsed().as_secs_f64();
                    ctx.metrics.phase(kind, model, Phase::Write, written);
                    outcome
                }
                Err(failure) => handle_failure(ctx, &job.message, job.attempts, failure).await,
            };
            outcomes[i] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Ack))
        .collect()
}

/// Claims the job and loads its input. `Ok(None)`: nothing left to do
/// (already ended, or answered from the cache).
#[tracing::instrument(skip_all, fields(job_id = %message.job_id, account_id = %message.account_id))]
async fn prepare(ctx: &Context, message: &JobMessage) -> Result<Option<Prepared>, (i32, Failure)> {
    let kind = message.kind.as_str();
    let claiming = Instant::now();
    let claim = match jobs::start(&ctx.db, message.job_id).await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            tracing::info!("job already ended or unknown; acknowledging redelivery");
            ctx.metrics.skipped.with_label_values(&[kind]).inc();
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
        .ok_or_else(|| fail(permanent("missing_input", "the job has no stored input")))?;
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
            return Err(fail(permanent("invalid_input", reason)));
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
                    Outcome::Retry { error, .. } => Err((attempts, Failure::Transient(error))),
                    _ => Ok(None),
                };
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "result cache unavailable; running the job"),
        }
    }
    if let (Some(data), Input::Audio { samples, .. }) = (audio, &mut prepared.input) {
        if let Some(marker) = &ctx.chaos_abort_on {
            if data.windows(marker.len()).any(|w| w == marker.as_slice()) {
                tracing::error!("chaos: input carries the abort marker; aborting");
                std::process::abort();
            }
        }
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
    if models::served_together(&workers, &message.model, translator) == Some(true) {
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
    let data = ctx.fetcher.fetch(url).await.map_err(|e| {
        if e.is_transient() {
            Failure::Transient(e.into())
        } else {
            let code = match e {
                FetchError::Refused(_) => "invalid_audio_url",
                FetchError::TooLarge(_) => "audio_too_large",
                _ => "fetch_failed",
            };
            permanent(code, e.to_string())
        }
    })?;
    // `Bytes` clones share one buffer; once the probe's is dropped, the
    // buffer becomes a `Vec` again without a copy.
    let data = bytes::Bytes::from(data);
    let probe_input = data.clone();
    let info = tokio::task::spawn_blocking(move || audio::probe(probe_input))
        .await
        .map_err(|e| permanent("invalid_audio", format!("the probe crashed: {e}")))?
        .map_err(|e| permanent(e.code(), e.to_string()))?;
    let data = Vec::from(data);
    // Bounded above only: the worker has no minimum-length setting.
    audio::check_length(&info, 0.0, ctx.max_audio_seconds)
        .map_err(|e| permanent(e.code(), e.to_string()))?;
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
        Grown::OverLimit => Err(permanent(
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
        .map_err(|e| permanent("invalid_audio", format!("the decoder crashed: {e}")))?
        .map_err(|e| permanent(e.code(), e.to_string()))
}

/// Runs the engine once for all `jobs` (one model); each job gets its
/// result and its share of the call's processing seconds. The decoded
/// audio moves into the engine call (hours of audio are not copied).
async fn infer(
    ctx: &Context,
    jobs: &mut [Prepared],
) -> Vec<(Result<serde_json::Value, Failure>, f64)> {
    let model = jobs[0].message.model.clone();
    let Some(served) = ctx.models.get(&model) else {
        return jobs
            .iter()
            .map(|_| {
                let message = format!("this worker does not serve model {model:?}");
                (Err(permanent("model_unavailable", message)), 0.0)
            })
            .collect();
    };
    let engine = served.engine.clone();
    let kind = jobs[0].message.kind;
    let audio: f64 = jobs
        .iter()
        .map(|j| match &j.input {
            Input::Audio { samples, .. } => samples.len() as f64 / f64::from(audio::TARGET_RATE),
            Input::Text(_) => 0.0,
        })
        .sum();
    let work: Vec<Work> = jobs.iter_mut().map(Work::of).collect();
    let translators: HashMap<String, Arc<dyn Engine>> = ctx
        .models
        .iter()
        .map(|(name, s)| (name.clone(), s.engine.clone()))
        .collect();
    let started = Instant::now();
    let n = work.len();
    let detection = Detection {
        vad: ctx.vad.clone(),
        auto_above: ctx.vad_auto_seconds,
    };
    // A panic inside an engine fails this call's attempt, not the worker.
    let results = tokio::task::spawn_blocking(move || {
        run_engine(engine.as_ref(), &translators, &detection, work)
    })
    .await
    .unwrap_or_else(|e| {
        (0..n)
            .map(|_| {
                Err(Failure::Transient(anyhow::anyhow!(
                    "inference crashed: {e}"
                )))
            })
            .collect()
    });
    let inference = started.elapsed().as_secs_f64();
    ctx.metrics
        .inference_seconds
        .with_label_values(&[kind.as_str(), &model])
        .observe(inference);
    ctx.metrics
        .batch_jobs
        .with_label_values(&[&model])
        .observe(n as f64);
    if audio > 0.0 {
        ctx.metrics
            .real_time_factor
            .with_label_values(&[&model])
            .observe(inference / audio);
    }
    // Each job pays for the share of the call its input took.
    let sizes: Vec<f64> = jobs.iter().map(|j| j.billed().1.max(1e-3)).collect();
    let total: f64 = sizes.iter().sum();
    results
        .into_iter()
        .zip(sizes)
        .map(|(result, size)| (result, inference * size / total))
        .collect()
}

/// One job's input as the blocking engine call needs it.
struct Work {
    kind: JobKind,
    samples: Vec<f32>,
    text: String,
    options: TranscribeOptions,
    target_language: String,
    target_languages: Vec<String>,
    translation_model: Option<String>,
    vad: VadParams,
}

/// How a worker finds speech before Whisper runs.
struct Detection {
    vad: Option<Arc<Vad>>,
    auto_above: f64,
}

impl Work {
    fn of(job: &mut Prepared) -> Self {
        let params = &job.message.params;
        let (samples, text) = match &mut job.input {
            Input::Audio { samples, .. } => (std::mem::take(samples), String::new()),
            Input::Text(text) => (Vec::new(), text.clone()),
        };
        Work {
            kind: job.message.kind,
            samples,
            text,
            options: TranscribeOptions {
                language: params.language.clone(),
                task: Task::Transcribe,
                word_timestamps: params.word_timestamps,
                speech: None,
                control: Some(job.control.clone()),
            },
            target_language: params.target_language.clone().unwrap_or_default(),
            target_languages: params.target_languages.clone(),
            translation_model: params.translation_model.clone(),
            vad: params.vad.clone(),
        }
    }
}

fn run_engine(
    engine: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    detection: &Detection,
    mut work: Vec<Work>,
) -> Vec<Result<serde_json::Value, Failure>> {
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| Failure::Transient(e.into()))
    };
    if work.iter().all(|w| w.kind == JobKind::Translate) {
        let requests: Vec<TranslateRequest> = work
            .iter()
            .map(|w| TranslateRequest {
                text: w.text.clone(),
                source: w.options.language.clone(),
                target: w.target_language.clone(),
            })
            .collect();
        let translated = match engine.translate_batch(&requests) {
            Ok(texts) => texts.into_iter().map(Ok).collect(),
            // Alone, one job's bad input fails that job only.
            Err(_) if requests.len() > 1 => requests
                .iter()
                .map(|r| {
                    engine
                        .translate_batch(std::slice::from_ref(r))
                        .and_then(|mut t| t.pop().ok_or_else(|| anyhow::anyhow!("no output")))
                })
                .collect(),
            Err(e) => vec![Err(e)],
        };
        return translated
            .into_iter()
            .zip(&work)
            .map(|(text, w)| {
                let text = text.map_err(engine_failure)?;
                let (sentences, _) = crate::engine::sentences::split(&w.text);
                to_json(serde_json::to_value(TranslationResult {
                    text,
                    target_language: w.target_language.clone(),
                    sentences: sentences.len(),
                }))
            })
            .collect();
    }
    // Speech detection first; a job it fails for sits out the batch.
    let mut results: Vec<Option<Result<serde_json::Value, Failure>>> =
        work.iter().map(|_| None).collect();
    for (w, result) in work.iter_mut().zip(&mut results) {
        let vad = detection.vad.as_deref();
        match vad::detect(vad, &w.samples, &w.vad, detection.auto_above) {
            Ok(speech) => w.options.speech = speech,
            Err(e) => *result = Some(Err(engine_failure(e))),
        }
    }
    let ready: Vec<usize> = (0..work.len()).filter(|&i| results[i].is_none()).collect();
    let clips: Vec<&[f32]> = ready.iter().map(|&i| work[i].samples.as_slice()).collect();
    let options: Vec<TranscribeOptions> = ready.iter().map(|&i| work[i].options.clone()).collect();
    let transcripts = if ready.is_empty() {
        Vec::new()
    } else {
        engine.transcribe_batch(&clips, &options)
    };
    for (&i, transcript) in ready.iter().zip(transcripts) {
        results[i] = Some(finish_transcript(engine, models, &work[i], transcript));
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::Transient(anyhow::anyhow!("no result")))))
        .collect()
}

/// A transcript as the job's result: with its renditions for speech
/// translation.
fn finish_transcript(
    engine: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    w: &Work,
    transcript: anyhow::Result<TranscriptResult>,
) -> Result<serde_json::Value, Failure> {
    let mut transcript = transcript.map_err(engine_failure)?;
    if w.kind == JobKind::SpeechTranslate {
        for target in &w.target_languages {
            let rendition = render(engine, models, w, &transcript, target)?;
            transcript.translations.insert(target.clone(), rendition);
        }
    }
    serde_json::to_value(transcript).map_err(|e| Failure::Transient(e.into()))
}

/// The transcript in `target`: itself if already in it, Whisper's own
/// translate task for English, else the transcript's segments through the
/// translation model (keeping the source timings).
fn render(
    whisper: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    work: &Work,
    transcript: &TranscriptResult,
    target: &str,
) -> Result<Rendition, Failure> {
    if target == transcript.language {
        return Ok(Rendition {
            text: transcript.text.clone(),
            segments: transcript.segments.clone(),
        });
    }
    if target == "en" && whisper.info().languages.len() > 1 {
        let options = TranscribeOptions {
            language: Some(transcript.language.clone()),
            task: Task::Translate,
            word_timestamps: false,
            speech: work.options.speech.clone(),
            control: work.options.control.clone(),
        };
        let english = whisper
            .transcribe(&work.samples, &options)
            .map_err(engine_failure)?;
        return Ok(Rendition {
            text: english.text,
            segments: english.segments,
        });
    }
    let name = work.translation_model.as_deref().unwrap_or("");
    let translator = models.get(name).ok_or_else(|| {
        permanent(
            "model_unavailable",
            format!("this worker does not serve the translation model {name:?}"),
        )
    })?;
    let requests: Vec<TranslateRequest> = transcript
        .segments
        .iter()
        .map(|s| TranslateRequest {
            text: s.text.clone(),
            source: Some(transcript.language.clone()),
            target: target.to_owned(),
        })
        .collect();
    let texts = if requests.is_empty() {
        Vec::new()
    } else {
        translator
            .translate_batch(&requests)
            .map_err(engine_failure)?
    };
    let segments: Vec<Segment> = transcript
        .segments
        .iter()
        .zip(texts)
        .map(|(source, text)| Segment {
            start: source.start,
            end: source.end,
            text,
            ..Segment::default()
        })
        .collect();
    Ok(Rendition {
        text: crate::engine::join_text(&segments),
        segments,
    })
}

/// Commits a success: result, usage (per the cache policy for a cache
/// hit), status; then settles the quota, caches the view and, for a fresh
/// result, stores it in the result cache.
async fn finish(
    ctx: &Context,
    job: &Prepared,
    result: serde_json::Value,
    inference: f64,
    cache_hit: bool,
) -> Outcome {
    let message = &job.message;
    let processing = if cache_hit {
        0.0
    } else {
        // Decoding and loading, plus this job's share of the engine call.
        (job.started.elapsed().as_secs_f64()).max(inference)
    };
    let (metric, quantity) = job.billed();
    let usage: Vec<(UsageMetric, f64)> = if cache_hit && job.cache_policy == ResultCachePolicy::Free
    {
        Vec::new()
    } else {
        vec![
            (metric, quantity),
            (UsageMetric::ProcessingSeconds, processing),
        ]
    };
    let succeeded = jobs::succeed(
        &ctx.db,
        message.job_id,
        &result,
        &usage,
        cache_hit,
        &job.cache_key,
    );
    let ended = match succeeded.await {
        Ok(ended) => ended,
        Err(e) => {
            return Outcome::Retry {
                error: e.into(),
                attempts: job.attempts,
            }
        }
    };
    let Some(ended) = ended else {
        ctx.metrics
            .skipped
            .with_label_values(&[message.kind.as_str()])
            .inc();
        return Outcome::Ack;
    };
    ctx.metrics
        .processed
        .with_label_values(&[message.kind.as_str()])
        .inc();
    tracing::info!(job_id = %message.job_id, cache_hit, processing, "job succeeded");
    settle(ctx, &ended.reservation, Amounts::from_usage(&usage)).await;
    cache(ctx, message.account_id, &ended.view).await;
    announce_end(ctx, message, JobStatus::Succeeded).await;
    if !cache_hit && job.cache_policy != ResultCachePolicy::Off {
        if let Err(e) = result_cache::put(&ctx.db, &job.cache_key, &message.model, &result).await {
            tracing::warn!(error = %e, "storing the result in the result cache");
        }
    }
    Outcome::Ack
}

async fn handle_failure(
    ctx: &Context,
    message: &JobMessage,
    attempts: i32,
    failure: Failure,
) -> Outcome {
    match failure {
        Failure::Permanent(error) => fail(ctx, message, attempts, error, Outcome::Ack).await,
        Failure::Poison(error) => fail(ctx, message, attempts, error, Outcome::DeadLetter).await,
        Failure::Stopped if ctx.interrupt.is_cancelled() => {
            tracing::info!(job_id = %message.job_id, "worker stopping; returning the job to the queue");
            ctx.metrics.stopped.with_label_values(&["shutdown"]).inc();
            if let Err(e) = jobs::release_claim(&ctx.db, message.job_id).await {
                tracing::warn!(error = %e, "returning the job");
            }
            Outcome::Requeue
        }
        Failure::Elsewhere(reason) => {
            tracing::info!(job_id = %message.job_id, %reason, "handing the job to another worker");
            ctx.metrics.handed_back.inc();
            if let Err(e) = jobs::release_claim(&ctx.db, message.job_id).await {
                tracing::warn!(error = %e, "returning the job");
            }
            // Through the shortest retry delay: back in its queue within
            // two seconds, where the next consumer may be the right worker.
            Outcome::Retry {
                error: anyhow::anyhow!(reason),
                attempts: 0,
            }
        }
        Failure::Stopped => {
            tracing::info!(job_id = %message.job_id, "job cancelled while running; stopped");
            ctx.metrics.stopped.with_label_values(&["cancelled"]).inc();
            Outcome::Ack
        }
        Failure::Transient(e) if attempts >= ctx.max_attempts => {
            tracing::warn!(job_id = %message.job_id, error = ?e, attempts, "giving up after the last attempt");
            let error = JobError {
                code: "attempts_exhausted".into(),
                message: format!("failed {attempts} times; last error: {e}"),
            };
            fail(ctx, message, attempts, error, Outcome::DeadLetter).await
        }
        Failure::Transient(e) => {
            tracing::warn!(job_id = %message.job_id, error = ?e, attempts, "transient failure; will retry");
            if attempts > 0 {
                if let Err(e) = jobs::requeue(&ctx.db, message.job_id).await {
                    tracing::warn!(error = %e, "marking job queued again");
                }
            }
            Outcome::Retry { error: e, attempts }
        }
    }
}

/// Ends the job failed; `then` says what becomes of its message.
async fn fail(
    ctx: &Context,
    message: &JobMessage,
    attempts: i32,
    error: JobError,
    then: Outcome,
) -> Outcome {
    match end_failed(ctx, message, &error).await {
        Ok(_) => then,
        Err(e) => Outcome::Retry {
            error: e.into(),
            attempts,
        },
    }
}

/// Ends the job failed unless it already ended, releasing its quota
/// reservation and telling its watchers; whether it was still open.
pub(crate) async fn end_failed(
    ctx: &Context,
    message: &JobMessage,
    error: &JobError,
) -> Result<bool, sqlx::Error> {
    tracing::warn!(job_id = %message.job_id, code = %error.code, reason = %error.message, "job failed");
    let Some(ended) = jobs::fail(&ctx.db, message.job_id, error).await? else {
        return Ok(false);
    };
    ctx.metrics
        .failed
        .with_label_values(&[message.kind.as_str(), &error.code])
        .inc();
    settle(ctx, &ended.reservation, Amounts::default()).await;
    cache(ctx, message.account_id, &ended.view).await;
    announce_end(ctx, message, JobStatus::Failed).await;
    Ok(true)
}

/// Swaps the job's quota reservation for what it used. Postgres already
/// holds the usage; if Redis misses this, a rebuild from Postgres corrects
/// the counters.
async fn settle(ctx: &Context, reservation: &Reservation, used: Amounts) {
    if let Err(e) = ctx.quotas.settle(reservation, used).await {
        tracing::warn!(error = %e, "settling the quota reservation");
    }
}

async fn cache(ctx: &Context, account_id: Uuid, view: &JobView) {
    // Postgres holds the truth; a missed cache write only costs a slower poll.
    if let Err(e) = ctx.cache.put_terminal(account_id, view).await {
        tracing::warn!(error = %e, "caching finished job");
    }
}

async fn announce_end(ctx: &Context, message: &JobMessage, status: JobStatus) {
    ctx.events
        .publish(&JobEvent {
            job_id: message.job_id,
            account_id: message.account_id,
            status,
            progress: None,
        })
        .await;
}

/// A running job as its watcher sees it.
struct Watched {
    job_id: Uuid,
    account_id: Uuid,
    seconds_total: f64,
    control: Arc<JobControl>,
}

impl Watched {
    fn of(job: &Prepared) -> Self {
        let seconds_total = match &job.input {
            Input::Audio { seconds, .. } => *seconds,
            Input::Text(_) => 0.0,
        };
        Self {
            job_id: job.message.job_id,
            account_id: job.message.account_id,
            seconds_total,
            control: job.control.clone(),
        }
    }
}

/// How often a running batch's watcher looks for cancellations and
/// reports progress.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// While a batch runs: stops the jobs that were cancelled (or all of
/// them once the worker's grace period is over) and publishes the
/// progress of long audio. Aborted when the batch's engine call returns.
async fn watch(
    db: PgPool,
    events: Events,
    cache: JobCache,
    interrupt: CancellationToken,
    watched: Vec<Watched>,
) {
    let ids: Vec<Uuid> = watched.iter().map(|j| j.job_id).collect();
    let mut reported: Vec<f64> = vec![0.0; watched.len()];
    let mut hooked: Vec<f64> = vec![0.0; watched.len()];
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = interrupt.cancelled() => {
                watched.iter().for_each(|j| j.control.stop());
                return;
            }
        }
        match jobs::cancelled(&db, &ids).await {
            Ok(cancelled) => watched
                .iter()
                .filter(|j| cancelled.contains(&j.job_id))
                .for_each(|j| j.control.stop()),
            Err(e) => tracing::warn!(error = %e, "checking for cancellations"),
        }
        for ((job, last), hooked) in watched.iter().zip(&mut reported).zip(&mut hooked) {
            let done = job.control.seconds_done();
            if done <= *last || job.seconds_total <= 0.0 {
                continue;
            }
            *last = done;
            let progress = Progress {
                seconds_done: done,
                seconds_total: job.seconds_total,
            };
            if let Err(e) = cache.put_progress(job.job_id, progress).await {
                tracing::warn!(error = %e, "storing job progress");
            }
            events
                .publish(&JobEvent {
                    job_id: job.job_id,
                    account_id: job.account_id,
                    status: JobStatus::Running,
                    progress: Some(progress),
                })
                .await;
            // Webhooks are sparser: every tenth of the audio, at least 30 s.
            if done - *hooked >= (job.seconds_total / 10.0).max(30.0) {
                *hooked = done;
                let data = serde_json::json!({
                    "id": job.job_id,
                    "status": JobStatus::Running,
                    "url": format!("/v1/jobs/{}", job.job_id),
                    "progress": progress,
                });
                if let Err(e) = webhooks::enqueue_progress(&db, job.job_id, &data).await {
                    tracing::warn!(error = %e, "queueing a progress webhook");
                }
            }
        }
    }
}
