//! Which served model takes a job: the named one or the default for its
//! kind, with the languages it handles, and for speech translation the
//! translation model that must run on the same worker.

use voxq_shared::job::{JobKind, JobParams};
use voxq_shared::registry::{self, ServedModel};

use super::invalid::Invalid;
use crate::catalog::Catalog;
use crate::error::Result;

/// Picks the job's model (the named one, or the default for its kind)
/// among those served, and checks its languages; fills in `params.model`
/// (and `translation_model` for speech translation into languages other
/// than English).
pub async fn resolve(catalog: &Catalog, kind: JobKind, params: &mut JobParams) -> Result<()> {
    let lookup = |models: &[ServedModel], kind: JobKind, name: Option<&str>| {
        registry::pick(models, kind, name).cloned()
    };
    let mut served = catalog.models(false).await?;
    let mut model = lookup(&served, kind, params.model.as_deref());
    if model.is_none() {
        // Perhaps a worker announced itself within the reuse window.
        served = catalog.models(true).await?;
        model = lookup(&served, kind, params.model.as_deref());
    }
    let model = model.ok_or_else(|| unknown_model(&served, kind, params.model.as_deref()))?;
    let speaks = |m: &ServedModel, code: &str| {
        m.info.languages.is_empty() || m.info.languages.iter().any(|l| l == code)
    };
    match kind {
        JobKind::Transcribe | JobKind::SpeechTranslate => {
            if let Some(language) = params.language.as_deref().filter(|l| !speaks(&model, l)) {
                return Err(unsupported_language(&model.info.name, language).into());
            }
        }
        JobKind::Translate => {
            let target = params.target_language.as_deref().unwrap_or("");
            if !speaks(&model, target) {
                return Err(unsupported_language(&model.info.name, target).into());
            }
        }
    }
    if kind == JobKind::SpeechTranslate {
        // Whisper translates into English itself; an English-only model's
        // transcript already is English.
        let whisper_english = |t: &str| t == "en" || t == "eng_Latn";
        let others: Vec<&String> = params
            .target_languages
            .iter()
            .filter(|t| !whisper_english(t))
            .collect();
        if !others.is_empty() {
            let name = params.translation_model.as_deref();
            let translator = lookup(&served, JobKind::Translate, name)
                .ok_or_else(|| unknown_model(&served, JobKind::Translate, name))?;
            if let Some(target) = others.iter().find(|t| !speaks(&translator, t)) {
                return Err(unsupported_language(&translator.info.name, target).into());
            }
            // The worker that transcribes also translates: a job no worker
            // could finish is refused now rather than failed later.
            let apart = catalog
                .served_together(&model.info.name, &translator.info.name)
                .await?
                == Some(false);
            if apart {
                return Err(Invalid::ModelsApart {
                    model: model.info.name.clone(),
                    translator: translator.info.name.clone(),
                }
                .into());
            }
            params.translation_model = Some(translator.info.name.clone());
        }
        // One spelling of English, so the result has one key for it.
        for target in &mut params.target_languages {
            if whisper_english(target) {
                *target = "en".into();
            }
        }
        params.target_languages.dedup();
    }
    params.model = Some(model.info.name);
    Ok(())
}

fn unknown_model(served: &[ServedModel], kind: JobKind, name: Option<&str>) -> Invalid {
    let available = served
        .iter()
        .filter(|m| m.info.kinds.contains(&kind))
        .map(|m| m.info.name.clone())
        .collect();
    let asked = match name {
        Some(name) => format!("no worker serves model {name:?} for {} jobs", kind.as_str()),
        None => format!("no worker serves {} jobs", kind.as_str()),
    };
    Invalid::UnknownModel { asked, available }
}

fn unsupported_language(model: &str, language: &str) -> Invalid {
    Invalid::UnsupportedLanguage {
        model: model.to_owned(),
        language: language.to_owned(),
    }
}
