//! Which models can take jobs: what running workers announce in their
//! heartbeats (Redis), plus the models an operator declares on standby
//! (served by workers that scale to zero while idle).

use std::collections::BTreeMap;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::job::JobKind;

/// How often workers announce themselves.
pub const HEARTBEAT_SECONDS: u64 = 5;
/// A worker silent for this long is gone.
pub const STALE_AFTER_SECONDS: u64 = 4 * HEARTBEAT_SECONDS;

/// One model as a worker serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub name: String,
    /// `ct2-whisper`, `whisper-cpp` or `ct2-translate`.
    pub engine: String,
    /// Job kinds the model can run.
    pub kinds: Vec<JobKind>,
    /// Languages it reads or writes (ISO 639-1, or the model's own codes);
    /// empty when unknown.
    pub languages: Vec<String>,
    /// Preferred for its kinds when a job names no model.
    #[serde(default)]
    pub default: bool,
}

/// A model a worker was configured to serve but could not load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelFailure {
    pub name: String,
    pub error: String,
}

/// A worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub id: String,
    pub models: Vec<ModelInfo>,
    /// Non-empty: the worker runs degraded, without these models.
    pub failed: Vec<ModelFailure>,
    /// Unix milliseconds of the heartbeat.
    pub seen_at_ms: i64,
}

/// A model as `GET /v1/models` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedModel {
    #[serde(flatten)]
    pub info: ModelInfo,
    /// Workers serving it now; 0 for a standby model whose workers are
    /// scaled down (its jobs queue until one starts).
    pub workers: usize,
}

pub fn valid_model_name(name: &str) -> bool {
    // Names become parts of queue names and routing keys.
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

#[derive(Clone)]
pub struct Registry {
    redis: ConnectionManager,
    key: String,
}

impl Registry {
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            key: format!("{namespace}:workers"),
        }
    }

    pub async fn announce(&self, status: &WorkerStatus) -> redis::RedisResult<()> {
        let json = serde_json::to_string(status).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::TypeError, "encoding", e.to_string()))
        })?;
        self.redis
            .clone()
            .hset::<_, _, _, ()>(&self.key, &status.id, json)
            .await
    }

    pub async fn withdraw(&self, worker_id: &str) -> redis::RedisResult<()> {
        self.redis
            .clone()
            .hdel::<_, _, ()>(&self.key, worker_id)
            .await
    }

    /// Workers heard from recently; forgets the others.
    pub async fn workers(&self) -> redis::RedisResult<Vec<WorkerStatus>> {
        let mut redis = self.redis.clone();
        let all: BTreeMap<String, String> = redis.hgetall(&self.key).await?;
        let fresh_after = chrono::Utc::now().timestamp_millis() - STALE_AFTER_SECONDS as i64 * 1000;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (id, json) in all {
            match serde_json::from_str::<WorkerStatus>(&json) {
                Ok(status) if status.seen_at_ms >= fresh_after => live.push(status),
                _ => stale.push(id),
            }
        }
        if !stale.is_empty() {
            redis.hdel::<_, _, ()>(&self.key, stale).await?;
        }
        Ok(live)
    }
}

/// Live workers' models merged by name, with `standby` models added for
/// names no live worker serves.
pub fn served(workers: &[WorkerStatus], standby: &[ModelInfo]) -> Vec<ServedModel> {
    let mut by_name: BTreeMap<String, ServedModel> = BTreeMap::new();
    for model in workers.iter().flat_map(|w| &w.models) {
        by_name
            .entry(model.name.clone())
            .and_modify(|m| m.workers += 1)
            .or_insert_with(|| ServedModel {
                info: model.clone(),
                workers: 1,
            });
    }
    for model in standby {
        by_name
            .entry(model.name.clone())
            .or_insert_with(|| ServedModel {
                info: model.clone(),
                workers: 0,
            });
    }
    by_name.into_values().collect()
}

/// Whether some live worker serves both models; `None` when none serves
/// `first` at all.
pub fn served_together(workers: &[WorkerStatus], first: &str, second: &str) -> Option<bool> {
    let serves = |w: &WorkerStatus, name: &str| w.models.iter().any(|m| m.name == name);
    let mut with_first = workers.iter().filter(|w| serves(w, first)).peekable();
    with_first.peek()?;
    Some(with_first.any(|w| serves(w, second)))
}

/// The model a job of `kind` runs on: the named one if it serves `kind`,
/// else the default for `kind` (one marked default, or the first by name).
pub fn pick<'a>(
    models: &'a [ServedModel],
    kind: JobKind,
    requested: Option<&str>,
) -> Option<&'a ServedModel> {
    let serving = |m: &&ServedModel| m.info.kinds.contains(&kind);
    match requested {
        Some(name) => models.iter().filter(serving).find(|m| m.info.name == name),
        None => models
            .iter()
            .filter(serving)
            .find(|m| m.info.default)
            .or_else(|| models.iter().find(|m| serving(m))),
    }
}

/// Parses `name=kind[+kind…]` entries separated by commas, as
/// `VOXQ_STANDBY_MODELS` holds them.
pub fn parse_standby(value: &str) -> Result<Vec<ModelInfo>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (name, kinds) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected name=kind[+kind]"))?;
            if !valid_model_name(name) {
                return Err(format!("{name:?} is not a valid model name"));
            }
            let kinds = kinds
                .split('+')
                .map(|k| JobKind::parse(k).ok_or_else(|| format!("unknown job kind {k:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ModelInfo {
                name: name.to_owned(),
                engine: "standby".into(),
                kinds,
                languages: Vec::new(),
                default: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, kinds: &[JobKind], default: bool) -> ModelInfo {
        ModelInfo {
            name: name.into(),
            engine: "ct2-whisper".into(),
            kinds: kinds.to_vec(),
            languages: vec![],
            default,
        }
    }

    fn worker(models: Vec<ModelInfo>) -> WorkerStatus {
        WorkerStatus {
            id: "w".into(),
            models,
            failed: vec![],
            seen_at_ms: 0,
        }
    }

    #[test]
    fn models_merge_by_name_and_the_default_wins_when_none_is_named() {
        let a = model("a", &[JobKind::Transcribe], false);
        let b = model("b", &[JobKind::Transcribe], true);
        let t = model("t", &[JobKind::Translate], false);
        let workers = [worker(vec![a.clone(), b.clone()]), worker(vec![a, t])];
        let standby = parse_standby("s=translate+transcribe").expect("standby");
        let served = served(&workers, &standby);
        let names: Vec<(&str, usize)> = served
            .iter()
            .map(|m| (m.info.name.as_str(), m.workers))
            .collect();
        assert_eq!(names, [("a", 2), ("b", 1), ("s", 0), ("t", 1)]);
        let name = |m: Option<&ServedModel>| m.map(|m| m.info.name.clone());
        assert_eq!(
            name(pick(&served, JobKind::Transcribe, None)).as_deref(),
            Some("b")
        );
        assert_eq!(
            name(pick(&served, JobKind::Translate, None)).as_deref(),
            Some("s")
        );
        assert_eq!(
            name(pick(&served, JobKind::Transcribe, Some("a"))).as_deref(),
            Some("a")
        );
        assert!(pick(&served, JobKind::Translate, Some("a")).is_none());
        assert!(pick(&served, JobKind::SpeechTranslate, None).is_none());
    }

    #[test]
    fn models_are_served_together_only_by_one_worker() {
        let a = model("a", &[JobKind::SpeechTranslate], false);
        let b = model("b", &[JobKind::SpeechTranslate], false);
        let t = model("t", &[JobKind::Translate], false);
        let apart = [worker(vec![a.clone()]), worker(vec![t.clone()])];
        assert_eq!(served_together(&apart, "a", "t"), Some(false));
        let together = [worker(vec![a.clone()]), worker(vec![a, t])];
        assert_eq!(served_together(&together, "a", "t"), Some(true));
        assert_eq!(served_together(&together, "b", "t"), None);
        assert_eq!(served_together(&[worker(vec![b])], "b", "t"), Some(false));
    }

    #[test]
    fn model_names_are_safe_queue_name_parts() {
        assert!(valid_model_name("whisper-tiny.en"));
        assert!(!valid_model_name(""));
        assert!(!valid_model_name(".hidden"));
        assert!(!valid_model_name("a b"));
        assert!(!valid_model_name(&"x".repeat(65)));
        assert!(parse_standby("bad name=translate").is_err());
        assert!(parse_standby("m=sing").is_err());
        assert_eq!(parse_standby("").expect("empty"), vec![]);
    }
}
