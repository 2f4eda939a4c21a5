//! SentencePiece model files (`.spm`, `.model`) read without the C++
//! library: the model's protobuf is parsed here and its pieces, scores and
//! normalisation rules become a `tokenizers` pipeline that cuts text as
//! SentencePiece does (unigram and BPE models, byte fallback,
//! user-defined pieces); joining pieces back into text is SentencePiece's
//! own simple rule, written out below.
//!
//! Longer than most files: one file format, read and rebuilt whole.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{
    AddedToken, Decoder, ModelWrapper, NormalizedString, Normalizer, NormalizerWrapper, Tokenizer,
};

/// SentencePiece's stand-in for a space.
const SPACE: char = '\u{2581}';

/// One SentencePiece model: cuts text into pieces and joins pieces into
/// text.
pub struct SentencePiece {
    normalizer: Sequence,
    tokenizer: Tokenizer,
    /// The text's leading word mark is its own piece when a user-defined
    /// piece starts the text: the pipeline cuts that piece out before it
    /// could add the mark.
    dummy_prefix: bool,
    unknown_id: u32,
    user_defined: HashSet<String>,
    /// Pieces that are text when joined (normal, user-defined, byte);
    /// control and unknown pieces, and strings the model does not have,
    /// are not.
    text_pieces: HashSet<String>,
}

impl SentencePiece {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("loading {}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let proto = ModelProto::parse(bytes)?;
        let (normalizer, tokenizer) = proto.tokenizer()?;
        let unknown = &proto.unknown()?.piece;
        let unknown_id = tokenizer
            .token_to_id(unknown)
            .ok_or_else(|| anyhow!("the unknown piece {unknown} is not in the vocabulary"))?;
        let text_pieces = proto
            .pieces
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    PieceKind::Normal | PieceKind::UserDefined | PieceKind::Byte
                )
            })
            .map(|p| p.piece.clone())
            .collect();
        let user_defined = proto
            .pieces
            .iter()
            .filter(|p| p.kind == PieceKind::UserDefined)
            .map(|p| p.piece.clone())
            .collect();
        Ok(Self {
            normalizer,
            tokenizer,
            dummy_prefix: proto.add_dummy_prefix,
            unknown_id,
            user_defined,
            text_pieces,
        })
    }

    /// The pieces of `text`.
    pub fn encode(&self, text: &str) -> anyhow::Result<Vec<String>> {
        let mut normalized = NormalizedString::from(text);
        self.normalizer
            .normalize(&mut normalized)
            .map_err(|e| anyhow!("normalising: {e}"))?;
        let encoding = self
            .tokenizer
            .encode(normalized.get(), false)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        // Text the model has no piece for comes back as itself, as
        // SentencePiece returns it (CTranslate2 maps it to its own unknown
        // token, or to a piece of the other side's vocabulary).
        let mut pieces: Vec<String> = encoding
            .get_tokens()
            .iter()
            .zip(encoding.get_ids())
            .zip(encoding.get_offsets())
            .map(|((token, &id), &(start, end))| {
                match (id == self.unknown_id, normalized.get().get(start..end)) {
                    (true, Some(surface)) => surface.to_owned(),
                    _ => token.clone(),
                }
            })
            .collect();
        if self.dummy_prefix
            && pieces
                .first()
                .is_some_and(|p| self.user_defined.contains(p))
        {
            pieces.insert(0, SPACE.to_string());
        }
        Ok(pieces)
    }

    /// The text of `pieces`; pieces that are not text are left out.
    pub fn decode(&self, pieces: &[String]) -> anyhow::Result<String> {
        let known: Vec<String> = pieces
            .iter()
            .filter(|p| self.text_pieces.contains(p.as_str()))
            .cloned()
            .collect();
        // <0xE4><0xB8><0xAD> pieces become the bytes of one character.
        let joined = ByteFallback::default()
            .decode_chain(known)
            .map_err(|e| anyhow!("detokenizing: {e}"))?
            .concat()
            .replace(SPACE, " ");
        // The leading space is the one encoding added, if it added one.
        match joined.strip_prefix(' ') {
            Some(text) if self.dummy_prefix => Ok(text.to_owned()),
            _ => Ok(joined),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug)]
struct Piece {
    piece: String,
    score: f32,
    kind: PieceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelType {
    Unigram,
    Bpe,
}

/// The parts of `sentencepiece_model.proto`'s `ModelProto` that cutting
/// text depends on.
#[derive(Debug)]
struct ModelProto {
    pieces: Vec<Piece>,
    model_type: ModelType,
    byte_fallback: bool,
    charsmap: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
}

impl ModelProto {
    fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let mut proto = ModelProto {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            byte_fallback: false,
            charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
        };
        for field in Fields::new(bytes) {
            match field? {
                (1, Value::Bytes(piece)) => proto.pieces.push(parse_piece(piece)?),
                (2, Value::Bytes(trainer)) => {
                    for field in Fields::new(trainer) {
                        match field? {
                            (3, Value::Varint(1)) => proto.model_type = ModelType::Unigram,
                            (3, Value::Varint(2)) => proto.model_type = ModelType::Bpe,
                            (3, Value::Varint(other)) => bail!(
                                "SentencePiece model type {other} (word or character models) is not supported"
                            ),
                            (35, Value::Varint(flag)) => proto.byte_fallback = flag != 0,
                            _ => {}
                        }
                    }
                }
                (3, Value::Bytes(normalizer)) => {
                    for field in Fields::new(normalizer) {
                        match field? {
                            (2, Value::Bytes(map)) => proto.charsmap = map.to_vec(),
                            (3, Value::Varint(flag)) => proto.add_dummy_prefix = flag != 0,
                            (4, Value::Varint(flag)) => proto.remove_extra_whitespaces = flag != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if !proto.pieces.iter().any(|p| p.kind == PieceKind::Normal) {
            bail!("not a SentencePiece model: no pieces");
        }
        Ok(proto)
    }

    fn unknown(&self) -> anyhow::Result<&Piece> {
        self.pieces
            .iter()
            .find(|p| p.kind == PieceKind::Unknown)
            .ok_or_else(|| anyhow!("the SentencePiece model has no unknown piece"))
    }

    /// Pieces text can be cut into; control and unused pieces never match
    /// text, and user-defined ones are matched whole before the model runs.
    fn model_pieces(&self) -> impl Iterator<Item = &Piece> {
        self.pieces.iter().filter(|p| {
            matches!(
                p.kind,
                PieceKind::Normal | PieceKind::Unknown | PieceKind::Byte
            )
        })
    }

    /// The normaliser runs on its own, before the tokenizer: the text's
    /// leading word mark goes where the normalised text starts, and the
    /// tokenizer would place it by the original text's offsets.
    fn tokenizer(&self) -> anyhow::Result<(Sequence, Tokenizer)> {
        let unknown = self.unknown()?;
        let model: ModelWrapper = match self.model_type {
            ModelType::Unigram => {
                let vocab: Vec<(String, f64)> = self
                    .model_pieces()
                    .map(|p| (p.piece.clone(), f64::from(p.score)))
                    .collect();
                let unk_id = vocab.iter().position(|(piece, _)| *piece == unknown.piece);
                Unigram::from(vocab, unk_id, self.byte_fallback)
                    .map_err(|e| anyhow!("building the unigram model: {e}"))?
                    .into()
            }
            ModelType::Bpe => self.bpe(&unknown.piece)?.into(),
        };
        let mut tokenizer = Tokenizer::new(model);
        let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
        if !self.charsmap.is_empty() {
            let precompiled = Precompiled::from(&self.charsmap)
                .map_err(|e| anyhow!("the model's normalisation map: {e}"))?;
            normalizers.push(precompiled.into());
        }
        if self.remove_extra_whitespaces {
            normalizers.push(Strip::new(true, true).into());
            normalizers.push(replace(ReplacePattern::Regex(" {2,}".into()), " ")?);
        }
        // Spaces become word marks before user-defined pieces are cut out,
        // so a space before one stays a piece of its own ("a <sep>" is
        // "▁a", "▁", "<sep>").
        normalizers.push(replace(
            ReplacePattern::String(" ".into()),
            &SPACE.to_string(),
        )?);
        let prepend = if self.add_dummy_prefix {
            PrependScheme::First
        } else {
            PrependScheme::Never
        };
        tokenizer.with_pre_tokenizer(Some(Metaspace::new(SPACE, prepend, true)));
        // Matched in the normalised text, as SentencePiece matches them.
        let user_defined: Vec<AddedToken> = self
            .pieces
            .iter()
            .filter(|p| p.kind == PieceKind::UserDefined)
            .map(|p| AddedToken::from(p.piece.clone(), false))
            .collect();
        tokenizer.add_tokens(&user_defined);
        Ok((Sequence::new(normalizers), tokenizer))
    }

    /// SentencePiece's BPE merges the adjacent pair whose union is the
    /// best-scoring piece; as a merge list, every split of every piece into
    /// two pieces, ranked by the union's score.
    fn bpe(&self, unknown: &str) -> anyhow::Result<BPE> {
        let vocab: Vocab = self
            .model_pieces()
            .enumerate()
            .map(|(id, p)| (p.piece.clone(), id as u32))
            .collect();
        let mut ranked: Vec<(f32, u32, (String, String))> = Vec::new();
        for piece in self.model_pieces().filter(|p| p.kind == PieceKind::Normal) {
            for (at, _) in piece.piece.char_indices().skip(1) {
                let (left, right) = piece.piece.split_at(at);
                if vocab.contains_key(left) && vocab.contains_key(right) {
                    let id = vocab.get(&piece.piece).copied().unwrap_or(u32::MAX);
                    ranked.push((piece.score, id, (left.to_owned(), right.to_owned())));
                }
            }
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let merges = ranked.into_iter().map(|(_, _, pair)| pair).collect();
        BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token(unknown.to_owned())
            .fuse_unk(true)
            .byte_fallback(self.byte_fallback)
            .build()
            .map_err(|e| anyhow!("building the BPE model: {e}"))
    }
}

fn replace(pattern: ReplacePattern, with: &str) -> anyhow::Result<NormalizerWrapper> {
    Ok(Replace::new(pattern, with)
        .map_err(|e| anyhow!("building the normaliser: {e}"))?
        .into())
}

fn parse_piece(bytes: &[u8]) -> anyhow::Result<Piece> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceKind::Normal,
    };
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(text)) => {
                piece.piece = std::str::from_utf8(text)
                    .context("a piece that is not UTF-8")?
                    .to_owned();
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(kind)) => {
                piece.kind = match kind {
                    1 => PieceKind::Normal,
                    2 => PieceKind::Unknown,
                    3 => PieceKind::Control,
                    4 => PieceKind::UserDefined,
                    5 => PieceKind::Unused,
                    6 => PieceKind::Byte,
                    other => bail!("unknown piece type {other}"),
                }
            }
            _ => {}
        }
    }
    Ok(piece)
}

/// A protobuf field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one protobuf message: (number, value), in order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().context("truncated varint")?;
            self.rest = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint longer than 64 bits")
    }

    fn take(&mut self, len: usize) -> anyhow::Result<&'a [u8]> {
        if len > self.rest.len() {
            bail!("truncated field");
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn field(&mut self) -> anyhow::Result<(u64, Value<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).context("field length")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let bytes = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            wire => bail!("unsupported protobuf wire type {wire}"),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = anyhow::Result<(u64, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // One malformed field ends the message.
            self.rest = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_models::{strings, with_reference};

    #[test]
    fn every_model_kind_cuts_and_joins_as_the_library_does() {
        // `ops/gen-spm-reference.py`'s models and the SentencePiece
        // library's own cuts.
        let (dir, reference) = with_reference("spm-reference");
        let models = reference.as_object().expect("models");
        assert_eq!(models.len(), 4, "unigram, bpe, bpe-bytes, unigram-raw");
        for (name, cases) in models {
            let model = SentencePiece::open(&dir.join(format!("{name}.model"))).expect(name);
            for case in cases.as_array().expect("cases") {
                let text = case["text"].as_str().expect("text");
                let pieces = strings(&case["pieces"]);
                assert_eq!(
                    model.encode(text).expect("encode"),
                    pieces,
                    "{name}: {text:?}"
                );
                assert_eq!(
                    model.decode(&pieces).expect("decode"),
                    case["decoded"].as_str().expect("decoded"),
                    "{name}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_truncated_or_foreign_file_is_an_error() {
        let (dir, _) = with_reference("spm-reference");
        let bytes = std::fs::read(dir.join("unigram.model")).expect("read");
        // Cut anywhere: a model of fewer pieces or an error, never a panic.
        for cut in (0..bytes.len()).step_by(97) {
            let _ = SentencePiece::from_bytes(&bytes[..cut]);
        }
        // The first piece cut in half.
        assert!(SentencePiece::from_bytes(&bytes[..5]).is_err());
        assert!(SentencePiece::from_bytes(b"not a model").is_err());
        assert!(SentencePiece::from_bytes(&[]).is_err());
        assert!(SentencePiece::from_bytes(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
