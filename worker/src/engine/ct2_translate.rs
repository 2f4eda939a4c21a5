//! Text translation on CTranslate2's `Translator` (NLLB, M2M100, OPUS-MT
//! and other sequence-to-sequence conversions) with a Hugging Face
//! `tokenizer.json`.
//!
//! How a model names languages is read from its vocabulary: NLLB-style
//! tokens (`deu_Latn`) go first on the source side and as the target
//! prefix; M2M100-style tokens (`__de__`) likewise; a model without
//! language tokens (one OPUS-MT pair) translates into the languages its
//! configuration lists.

use anyhow::{anyhow, bail, Context};
use ct2rs::sys::{TranslationOptions, Translator};
use tokenizers::Tokenizer;
use voxq_shared::job::JobKind;
use voxq_shared::models::ModelInfo;

use super::languages::{is_nllb_code, to_iso, to_nllb};
use super::{ct2_config, sentences, Engine, TranslateRequest, Unsupported};
use crate::config::ModelSpec;

/// Sentences per batch inside one CTranslate2 call (jobs are batched by
/// the consumer; this bounds the memory of one forward pass).
const SENTENCES_PER_BATCH: usize = 32;

/// How the model marks languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `eng_Latn`
    Nllb,
    /// `__en__`
    M2m100,
    /// No language tokens.
    Plain,
}

pub struct Ct2Translate {
    info: ModelInfo,
    translator: Translator,
    tokenizer: Tokenizer,
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
        let tokenizer_path = spec.path.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| anyhow!("loading {}: {e}", tokenizer_path.display()))?;
        let translator = Translator::new(&spec.path, &ct2_config(spec, replicas))
            .with_context(|| format!("loading translation model from {}", spec.path.display()))?;
        let vocab = tokenizer.get_vocab(true);
        let mut nllb: Vec<String> = vocab.keys().filter(|t| is_nllb_code(t)).cloned().collect();
        let mut m2m: Vec<String> = vocab
            .keys()
            .filter(|t| t.len() >= 6 && t.starts_with("__") && t.ends_with("__"))
            .cloned()
            .collect();
        let (style, mut languages) = if !nllb.is_empty() {
            (Style::Nllb, std::mem::take(&mut nllb))
        } else if !m2m.is_empty() {
            (Style::M2m100, std::mem::take(&mut m2m))
        } else {
            if spec.target_languages.is_empty() {
                bail!(
                    "model {} has no language tokens: list the languages it translates into \
                     (target_languages) in its configuration",
                    spec.name
                );
            }
            (Style::Plain, spec.target_languages.clone())
        };
        languages.sort();
        // Clients may use ISO 639-1 codes too: list both where they map.
        let mut advertised: Vec<String> = languages
            .iter()
            .flat_map(|code| {
                let iso = match style {
                    Style::Nllb => to_iso(code).map(str::to_owned),
                    Style::M2m100 => Some(code.trim_matches('_').to_owned()),
                    Style::Plain => None,
                };
                std::iter::once(code.clone()).chain(iso)
            })
            .collect();
        advertised.sort();
        advertised.dedup();
        Ok(Self {
            info: ModelInfo {
                name: spec.name.clone(),
                engine: "ct2-translate".into(),
                kinds: vec![JobKind::Translate],
                languages: advertised,
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

    /// The model's token for a client's language code.
    fn language_token(&self, code: &str) -> anyhow::Result<Option<String>> {
        let token = match self.style {
            Style::Nllb => to_nllb(code)
                .map(str::to_owned)
                .or_else(|| is_nllb_code(code).then(|| code.to_owned())),
            Style::M2m100 => {
                let iso = to_nllb(code).and_then(to_iso).unwrap_or(code);
                Some(format!("__{iso}__"))
            }
            Style::Plain => {
                return if self.languages.iter().any(|l| l == code) {
                    Ok(None)
                } else {
                    Err(self.unsupported(code))
                }
            }
        };
        match token {
            Some(t) if self.languages.contains(&t) => Ok(Some(t)),
            _ => Err(self.unsupported(code)),
        }
    }

    fn unsupported(&self, code: &str) -> anyhow::Error {
        Unsupported {
            model: self.info.name.clone(),
            what: format!("translate into or from {code:?}"),
        }
        .into()
    }

    fn tokenize(&self, sentence: &str) -> anyhow::Result<Vec<String>> {
        let encoding = self
            .tokenizer
            .encode(sentence, false)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(encoding.get_tokens().to_vec())
    }

    fn detokenize(&self, tokens: &[String]) -> String {
        let ids: Vec<u32> = tokens
            .iter()
            .filter_map(|t| self.tokenizer.token_to_id(t))
            .collect();
        self.tokenizer.decode(&ids, true).unwrap_or_default()
    }
}

impl Engine for Ct2Translate {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn translate_batch(&self, requests: &[TranslateRequest]) -> anyhow::Result<Vec<String>> {
        // Every sentence of every request goes into one call; CTranslate2
        // sorts them by length into batches of `max_batch_size`.
        let mut sources: Vec<Vec<String>> = Vec::new();
        let mut prefixes: Vec<Vec<String>> = Vec::new();
        let mut layouts = Vec::with_capacity(requests.len());
        for request in requests {
            let source = request.source.as_deref().unwrap_or(&self.default_source);
            let source_token = match self.style {
                Style::Plain => None,
                // An unknown source language falls back to the default: the
                // encoder copes, and the text is still translated.
                _ => self
                    .language_token(source)
                    .or_else(|_| self.language_token(&self.default_source))?,
            };
            let target_token = self.language_token(&request.target)?;
            let (pieces, layout) = sentences::split(&request.text);
            for piece in &pieces {
                let mut tokens: Vec<String> = source_token.iter().cloned().collect();
                tokens.extend(self.tokenize(piece)?);
                tokens.push("</s>".to_owned());
                sources.push(tokens);
                prefixes.push(target_token.iter().cloned().collect());
            }
            layouts.push((layout, pieces.len()));
        }
        let options = TranslationOptions::<String, String> {
            beam_size: self.beam_size,
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
        let mut translated = results.into_iter().zip(prefixes).map(|(result, prefix)| {
            let tokens = result.hypotheses.into_iter().next().unwrap_or_default();
            // The output may repeat the target prefix; it is not text.
            let text = tokens.strip_prefix(prefix.as_slice()).unwrap_or(&tokens);
            self.detokenize(text)
        });
        Ok(layouts
            .into_iter()
            .map(|(layout, n)| {
                let sentences: Vec<String> = translated.by_ref().take(n).collect();
                sentences::join(&layout, &sentences)
            })
            .collect())
    }
}
