//! The tokenizers translation models come with, found in the model's
//! directory:
//!
//! - `tokenizer.json`: a Hugging Face tokenizer (NLLB and M2M100
//!   conversions, `--copy_files tokenizer.json`);
//! - `source.spm` and `target.spm`: SentencePiece models, one per side
//!   (OPUS-MT and other Marian conversions);
//! - `sentencepiece.bpe.model`, `spm.model` or `sentencepiece.model`: one
//!   SentencePiece model for both sides.
//!
//! CTranslate2 takes and returns token strings and maps them through its
//! own vocabulary, so the tokenizer only has to agree with the model on
//! how text is cut.

use std::path::Path;

use anyhow::{anyhow, bail};
use tokenizers::Tokenizer;

use super::sentencepiece::SentencePiece;

/// Single SentencePiece files, in the order they are looked for.
const SHARED_SPM_FILES: &[&str] = &[
    "sentencepiece.bpe.model",
    "spm.model",
    "sentencepiece.model",
];

pub enum TextTokenizer {
    HuggingFace(Box<Tokenizer>),
    SentencePiece {
        /// Cuts the input.
        source: Box<SentencePiece>,
        /// Joins the output.
        target: Box<SentencePiece>,
    },
}

impl TextTokenizer {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let hugging_face = dir.join("tokenizer.json");
        if hugging_face.is_file() {
            let tokenizer = Tokenizer::from_file(&hugging_face)
                .map_err(|e| anyhow!("loading {}: {e}", hugging_face.display()))?;
            return Ok(Self::HuggingFace(Box::new(tokenizer)));
        }
        let (source, target) = (dir.join("source.spm"), dir.join("target.spm"));
        if source.is_file() && target.is_file() {
            return Ok(Self::SentencePiece {
                source: open_spm(&source)?,
                target: open_spm(&target)?,
            });
        }
        if let Some(shared) = SHARED_SPM_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
        {
            return Ok(Self::SentencePiece {
                source: open_spm(&shared)?,
                target: open_spm(&shared)?,
            });
        }
        bail!(
            "no tokenizer in {}: expected tokenizer.json, source.spm and target.spm, or one of {}",
            dir.display(),
            SHARED_SPM_FILES.join(", ")
        )
    }

    /// `huggingface` or `sentencepiece`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HuggingFace(_) => "huggingface",
            Self::SentencePiece { .. } => "sentencepiece",
        }
    }

    /// The input's tokens, without special tokens.
    pub fn encode(&self, text: &str) -> anyhow::Result<Vec<String>> {
        match self {
            Self::HuggingFace(tokenizer) => {
                let encoding = tokenizer
                    .encode(text, false)
                    .map_err(|e| anyhow!("tokenizing: {e}"))?;
                Ok(encoding.get_tokens().to_vec())
            }
            Self::SentencePiece { source, .. } => source.encode(text),
        }
    }

    /// The text of output tokens. Tokens the output side does not know
    /// (language tokens, special tokens, pieces of the other side of a
    /// shared vocabulary) are not text and are left out.
    pub fn decode(&self, tokens: &[String]) -> anyhow::Result<String> {
        match self {
            Self::HuggingFace(tokenizer) => {
                let ids: Vec<u32> = tokens
                    .iter()
                    .filter_map(|t| tokenizer.token_to_id(t))
                    .collect();
                tokenizer
                    .decode(&ids, true)
                    .map_err(|e| anyhow!("detokenizing: {e}"))
            }
            Self::SentencePiece { target, .. } => target.decode(tokens),
        }
    }
}

fn open_spm(path: &Path) -> anyhow::Result<Box<SentencePiece>> {
    SentencePiece::open(path).map(Box::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_models::{strings, with_reference};

    #[test]
    fn sentencepiece_cuts_and_joins_as_the_reference_library_does() {
        // The OPUS-MT-like model (`ops/gen-translation-model.py
        // --sentencepiece`).
        let (dir, reference) = with_reference("translate-test-spm");
        let tokenizer = TextTokenizer::load(&dir).expect("load");
        assert_eq!(tokenizer.kind(), "sentencepiece");
        // The source side cuts with source.spm: the generator checked that
        // target.spm cuts these texts otherwise.
        for case in reference["encode"].as_array().expect("encode") {
            let text = case["text"].as_str().expect("text");
            assert_eq!(
                tokenizer.encode(text).expect("encode"),
                strings(&case["pieces"]),
                "{text:?}"
            );
        }
        // The output side joins with target.spm, umlauts intact, and drops
        // the language and special tokens a model may produce.
        for case in reference["decode"].as_array().expect("decode") {
            assert_eq!(
                tokenizer.decode(&strings(&case["pieces"])).expect("decode"),
                case["text"].as_str().expect("text")
            );
        }
        assert!(tokenizer.encode("   ").expect("blank").is_empty());
        assert_eq!(tokenizer.decode(&[]).expect("empty"), "");
    }

    #[test]
    fn a_directory_without_tokenizer_says_what_it_expected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = TextTokenizer::load(dir.path()).err().expect("no tokenizer");
        let message = error.to_string();
        assert!(message.contains("tokenizer.json"), "{message}");
        assert!(message.contains("source.spm"), "{message}");
    }

    #[test]
    fn a_corrupt_sentencepiece_file_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("spm.model"), b"not a model").expect("write");
        let error = TextTokenizer::load(dir.path()).err().expect("corrupt");
        assert!(format!("{error:#}").contains("spm.model"), "{error:#}");
    }
}
