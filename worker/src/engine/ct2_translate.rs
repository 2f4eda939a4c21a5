//! Text translation on CTranslate2's `Translator` (NLLB, M2M100, OPUS-MT
//! and other sequence-to-sequence conversions), with the tokenizer the
//! model comes with (see `text_tokenizer`).
//!
//! How a model names languages is read from its CTranslate2 vocabulary:
//! NLLB-style tokens (`deu_Latn`) go first on the source side and as the
//! target prefix; M2M100-style tokens (`__de__`) likewise; OPUS-MT
//! multi-target tokens (`>>deu<<`) go first on the source side only; a
//! model without language tokens (one OPUS-MT pair) translates into the
//! languages its configuration lists.

use std::path::Path;

use anyhow::{bail, Context};
use ct2rs::sys::{TranslationOptions, Translator};
use voxq_shared::job::JobKind;
use voxq_shared::registry::ModelInfo;

use super::languages::{aliases, is_nllb_code};
use super::text_tokenizer::TextTokenizer;
use super::{
    ct2_config, sentences, vocabulary, Engine, TranslateRequest, Translation, Unsupported,
};
use crate::config::ModelSpec;

/// Sentences per batch inside one CTranslate2 call (jobs are batched by
/// the consumer; this bounds the memory of one forward pass).
const SENTENCES_PER_BATCH: usize = 32;

/// How the model marks languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `eng_Latn`, source and target prefix.
    Nllb,
    /// `__en__`, source and target prefix.
    M2m100,
    /// `>>deu<<`, before the source: the target language.
    Opus,
    /// No language tokens.
    Plain,
}

impl Style {
    fn of(vocabulary: &[String]) -> Self {
        let has = |test: fn(&str) -> bool| vocabulary.iter().any(|t| test(t));
        if has(is_nllb_code) {
            Self::Nllb
        } else if has(|t| Self::M2m100.code(t).is_some()) {
            Self::M2m100
        } else if has(|t| Self::Opus.code(t).is_some()) {
            Self::Opus
        } else {
            Self::Plain
        }
    }

    /// The language code inside a language token of this style.
    fn code(self, token: &str) -> Option<&str> {
        let inner = match self {
            Self::Nllb => return is_nllb_code(token).then_some(token),
            Self::M2m100 => token.strip_prefix("__")?.strip_suffix("__")?,
            Self::Opus => token.strip_prefix(">>")?.strip_suffix("<<")?,
            Self::Plain => return Some(token),
        };
        let valid = (2..=8).contains(&inner.len())
            && inner.starts_with(|c: char| c.is_ascii_lowercase())
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        valid.then_some(inner)
    }

    /// The token of this style for a language code.
    fn token(self, code: &str) -> Option<String> {
        match self {
            Self::Nllb => is_nllb_code(code).then(|| code.to_owned()),
            Self::M2m100 => Some(format!("__{code}__")),
            Self::Opus => Some(format!(">>{code}<<")),
            Self::Plain => Some(code.to_owned()),
        }
    }
}

pub struct Ct2Translate {
    info: ModelInfo,
    translator: Translator,
    tokenizer: TextTokenizer,
    style: Style,
    /// The model's own language tokens (or the configured targets).
    languages: Vec<String>,
    default_source: String,
    beam_size: usize,
    max_batch_size: usize,
    max_decoding_length: usize,
}

impl Ct2Translate {
    /// `replicas` model copies, so that this many calls run at once.
    pub fn load(spec: &ModelSpec, replicas: usize) -> anyhow::Result<Self> {
        let tokenizer = TextTokenizer::load(&spec.path)?;
        let vocabulary = vocabulary(&spec.path)?;
        let translator = Translator::new(&spec.path, &ct2_config(spec, replicas))
            .with_context(|| format!("loading translation model from {}", spec.path.display()))?;
        let style = Style::of(&vocabulary);
        let mut languages: Vec<String> = match style {
            Style::Plain if spec.target_languages.is_empty() => bail!(
                "model {} has no language tokens: list the languages it translates into \
                 (target_languages) in its configuration",
                spec.name
            ),
            Style::Plain => spec.target_languages.clone(),
            _ => vocabulary
                .into_iter()
                .filter(|t| style.code(t).is_some())
                .collect(),
        };
        languages.sort();
        languages.dedup();
        tracing::info!(
            model = %spec.name,
            tokenizer = tokenizer.kind(),
            style = ?style,
            languages = languages.len(),
            "translation model loaded"
        );
        Ok(Self {
            info: ModelInfo {
                name: spec.name.clone(),
                engine: "ct2-translate".into(),
                kinds: vec![JobKind::Translate],
                languages: advertised(style, &languages),
                default: spec.default,
            },
            translator,
            tokenizer,
            style,
            languages,
            default_source: spec.source_language.clone(),
            beam_size: spec.beam_size.max(1),
            max_batch_size: SENTENCES_PER_BATCH,
            max_decoding_length: spec.max_decoding_length.max(1),
        })
    }

    /// The model's token for a client's language code, under any of the
    /// language's names.
    fn language_token(&self, code: &str) -> anyhow::Result<String> {
        aliases(code)
            .iter()
            .filter_map(|name| self.style.token(name))
            .find(|token| self.languages.contains(token))
            .ok_or_else(|| self.unsupported(code))
    }

    fn unsupported(&self, code: &str) -> anyhow::Error {
        Unsupported {
            model: self.info.name.clone(),
            what: format!("translate into or from {code:?}"),
        }
        .into()
    }
}

/// The codes clients may use for a model's languages: ISO 639-1 and NLLB
/// codes where the language has them (what the API accepts), else the
/// model's own code.
fn advertised(style: Style, languages: &[String]) -> Vec<String> {
    let mut codes: Vec<String> = languages
        .iter()
        .filter_map(|token| style.code(token))
        .flat_map(|code| {
            let names: Vec<String> = aliases(code)
                .into_iter()
                .filter(|a| a.len() == 2 || is_nllb_code(a))
                .collect();
            if names.is_empty() {
                vec![code.to_owned()]
            } else {
                names
            }
        })
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// The tokens CTranslate2 maps through (`shared_vocabulary`, or the
/// `source_` and `target_` ones): language tokens are read from here,
/// whatever the tokenizer.
fn vocabulary(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    let mut found = false;
    for side in ["shared", "source", "target"] {
        if let Some(list) = vocabulary::read(dir, &format!("{side}_vocabulary"))? {
            found = true;
            tokens.extend(list);
        }
    }
    if !found {
        bail!(
            "{} has no CTranslate2 vocabulary (shared_vocabulary.json, or source_ and \
             target_vocabulary.json): is it a CTranslate2 translation model?",
            dir.display()
        );
    }
    Ok(tokens)
}

impl Engine for Ct2Translate {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn translate_batch(&self, requests: &[TranslateRequest]) -> anyhow::Result<Vec<Translation>> {
        // One call per number of alternatives: the wider beam they need
        // would change the other requests' results.
        let mut wanted: Vec<usize> = requests.iter().map(|r| r.alternatives).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out: Vec<Option<Translation>> = requests.iter().map(|_| None).collect();
        for alternatives in wanted {
            let indices: Vec<usize> = (0..requests.len())
                .filter(|&i| requests[i].alternatives == alternatives)
                .collect();
            let group: Vec<&TranslateRequest> = indices.iter().map(|&i| &requests[i]).collect();
            for (i, translation) in indices
                .into_iter()
                .zip(self.translate_group(&group, alternatives)?)
            {
                out[i] = Some(translation);
            }
        }
        out.into_iter()
            .map(|t| t.ok_or_else(|| anyhow::anyhow!("the translator returned too few results")))
            .collect()
    }
}

impl Ct2Translate {
    /// Translates requests that ask for the same number of alternatives.
    fn translate_group(
        &self,
        requests: &[&TranslateRequest],
        alternatives: usize,
    ) -> anyhow::Result<Vec<Translation>> {
        // Every sentence of every request goes into one call; CTranslate2
        // sorts them by length into batches of `max_batch_size`.
        let mut sources: Vec<Vec<String>> = Vec::new();
        let mut prefixes: Vec<Vec<String>> = Vec::new();
        let mut layouts = Vec::with_capacity(requests.len());
        for request in requests {
            let source = request.source.as_deref().unwrap_or(&self.default_source);
            let target = self.language_token(&request.target)?;
            // What goes before each sentence, and what the output starts with.
            let (lead, prefix) = match self.style {
                // An unknown source language falls back to the default: the
                // encoder copes, and the text is still translated.
                Style::Nllb | Style::M2m100 => (
                    Some(
                        self.language_token(source)
                            .or_else(|_| self.language_token(&self.default_source))?,
                    ),
                    vec![target],
                ),
                Style::Opus => (Some(target), Vec::new()),
                Style::Plain => (None, Vec::new()),
            };
            let (pieces, layout) = sentences::split(&request.text);
            for piece in &pieces {
                let mut tokens: Vec<String> = lead.iter().cloned().collect();
                tokens.extend(self.tokenizer.encode(piece)?);
                tokens.push("</s>".to_owned());
                sources.push(tokens);
                prefixes.push(prefix.clone());
            }
            layouts.push((layout, pieces.len()));
        }
        // Alternatives are the next beams: the beam is at least as wide as
        // the hypotheses it returns.
        let hypotheses = alternatives + 1;
        let options = TranslationOptions::<String, String> {
            beam_size: self.beam_size.max(hypotheses),
            num_hypotheses: hypotheses,
            max_decoding_length: self.max_decoding_length,
            max_batch_size: self.max_batch_size,
            ..TranslationOptions::default()
        };
        let results = if sources.is_empty() {
            Vec::new()
        } else if prefixes.iter().all(Vec::is_empty) {
            self.translator.translate_batch(&sources, &options, None)?
        } else {
            self.translator
                .translate_batch_with_target_prefix(&sources, &prefixes, &options, None)?
        };
        anyhow::ensure!(
            results.len() == sources.len(),
            "the translator returned {} results for {} sentences",
            results.len(),
            sources.len()
        );
        // Each sentence's hypotheses as text, most probable first.
        let translated = results
            .into_iter()
            .zip(prefixes)
            .map(|(result, prefix)| {
                result
                    .hypotheses
                    .into_iter()
                    .map(|tokens| {
                        // The output may repeat the target prefix; it is not text.
                        let text = tokens.strip_prefix(prefix.as_slice()).unwrap_or(&tokens);
                        self.tokenizer.decode(text)
                    })
                    .collect::<anyhow::Result<Vec<String>>>()
            })
            .collect::<anyhow::Result<Vec<Vec<String>>>>()?;
        let mut translated = translated.into_iter();
        Ok(layouts
            .into_iter()
            .map(|(layout, n)| {
                let sentences: Vec<Vec<String>> = translated.by_ref().take(n).collect();
                whole_texts(&layout, &sentences, alternatives)
            })
            .collect())
    }
}

/// A text's translation and its alternatives from its sentences'
/// hypotheses: alternative k takes each sentence's k-th hypothesis (its
/// best where it has fewer), so that it differs from the best where the
/// model was least sure.
fn whole_texts(
    layout: &sentences::Layout,
    sentences: &[Vec<String>],
    alternatives: usize,
) -> Translation {
    let nth = |k: usize| {
        let picked: Vec<String> = sentences
            .iter()
            .map(|h| h.get(k).or_else(|| h.first()).cloned().unwrap_or_default())
            .collect();
        sentences::join(layout, &picked)
    };
    let text = nth(0);
    let mut others: Vec<String> = Vec::with_capacity(alternatives);
    for k in 1..=alternatives {
        let candidate = nth(k);
        if candidate != text && !others.contains(&candidate) {
            others.push(candidate);
        }
    }
    Translation {
        text,
        alternatives: others,
    }
}
