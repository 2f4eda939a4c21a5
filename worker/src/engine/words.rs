//! Word timestamps, shared by the Whisper engines: splitting decoded tokens
//! into words, turning a token alignment into word times, and the reference
//! implementation's clean-ups (over-long words clamped at sentence ends,
//! punctuation folded into its word, segment edges moved to the speech).
//!
//! Longer than most files only by its tests (a third of it): the code is
//! the reference's one pipeline (`split`, `from_alignment`, `tidy`,
//! `attach`), in its order, shared by both Whisper engines.

use voxq_shared::job::{Segment, Word};

use super::round_ms;

/// Languages written without spaces: every whole character is a word.
const UNSPACED_LANGUAGES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];
/// Python's `string.punctuation`. Membership tests on these strings are
/// substring tests, as in the reference (the empty string included).
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const PREPEND_PUNCTUATION: &str = "\"'“¿([{-";
const APPEND_PUNCTUATION: &str = "\"'.。,，!！?？:：”)]}、";
const SENTENCE_END: [&str; 6] = [".", "。", "!", "！", "?", "？"];
/// Alignment positions per second (the encoder runs at 20 ms steps).
const POSITIONS_PER_SECOND: f64 = 50.0;

/// A word during timing: its text, its tokens and its span in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub word: String,
    pub tokens: Vec<u32>,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

/// Splits text tokens into words. `decode` turns tokens into text; a
/// token that ends inside a multi-byte character decodes to U+FFFD and is
/// kept with the tokens that complete it.
pub fn split(
    tokens: &[u32],
    language: &str,
    decode: impl Fn(&[u32]) -> String,
) -> Vec<(String, Vec<u32>)> {
    let pieces = split_on_characters(tokens, &decode);
    if UNSPACED_LANGUAGES.contains(&language) {
        return pieces;
    }
    let mut words: Vec<(String, Vec<u32>)> = Vec::new();
    for (piece, piece_tokens) in pieces {
        let starts_word =
            piece.starts_with(' ') || PUNCTUATION.contains(piece.trim()) || words.is_empty();
        match words.last_mut() {
            Some((word, word_tokens)) if !starts_word => {
                word.push_str(&piece);
                word_tokens.extend(piece_tokens);
            }
            _ => words.push((piece, piece_tokens)),
        }
    }
    words
}

fn split_on_characters(
    tokens: &[u32],
    decode: impl Fn(&[u32]) -> String,
) -> Vec<(String, Vec<u32>)> {
    const REPLACEMENT: char = '\u{fffd}';
    let full: Vec<char> = decode(tokens).chars().collect();
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut offset = 0;
    for &token in tokens {
        current.push(token);
        let decoded = decode(&current);
        let chars = decoded.chars().count();
        let complete = match decoded.chars().position(|c| c == REPLACEMENT) {
            None => true,
            // A replacement character the full text has too is real.
            Some(at) => full.get(offset + at) == Some(&REPLACEMENT),
        };
        if complete {
            offset += chars;
            pieces.push((decoded, std::mem::take(&mut current)));
        }
    }
    pieces
}

/// Word spans from a dynamic-time-warping path over (text token, encoder
/// position) pairs that covers the words' tokens and the end-of-text token
/// after them, and from the per-token probabilities.
pub fn from_alignment(
    words: Vec<(String, Vec<u32>)>,
    path: &[(i64, i64)],
    token_probs: &[f32],
) -> Vec<Timed> {
    // The position where the path first reaches each token is its start.
    let mut starts = Vec::new();
    let mut previous = None;
    for &(token, position) in path {
        if previous != Some(token) {
            starts.push(position as f64 / POSITIONS_PER_SECOND);
            previous = Some(token);
        }
    }
    let Some(&last) = starts.last() else {
        return Vec::new();
    };
    let at = |i: usize| starts.get(i).copied().unwrap_or(last);
    let mut first_token = 0;
    words
        .into_iter()
        .map(|(word, tokens)| {
            let end_token = first_token + tokens.len();
            let probs = token_probs
                .get(first_token..end_token.min(token_probs.len()))
                .unwrap_or(&[]);
            let probability = if probs.is_empty() {
                0.0
            } else {
                probs.iter().map(|&p| f64::from(p)).sum::<f64>() / probs.len() as f64
            };
            let timed = Timed {
                word,
                tokens,
                start: at(first_token),
                end: at(end_token),
                probability,
            };
            first_token = end_token;
            timed
        })
        .collect()
}

/// The reference's clean-up of one window's words: words that swallowed
/// a pause next to a sentence end are cut to twice the median word length,
/// then punctuation joins its word. Returns the median word duration.
pub fn tidy(words: &mut [Timed]) -> f64 {
    let mut durations: Vec<f64> = words
        .iter()
        .map(|w| w.end - w.start)
        .filter(|&d| d > 0.0)
        .collect();
    durations.sort_by(f64::total_cmp);
    let median = match durations.len() {
        0 => 0.0,
        n if n % 2 == 1 => durations[n / 2],
        n => (durations[n / 2 - 1] + durations[n / 2]) / 2.0,
    }
    .min(0.7);
    let max_duration = median * 2.0;
    if !durations.is_empty() {
        for i in 1..words.len() {
            if words[i].end - words[i].start > max_duration {
                if SENTENCE_END.contains(&words[i].word.as_str()) {
                    words[i].end = words[i].start + max_duration;
                } else if SENTENCE_END.contains(&words[i - 1].word.as_str()) {
                    words[i].start = words[i].end - max_duration;
                }
            }
        }
    }
    merge_punctuation(words);
    median
}

/// Opening punctuation joins the word after it, closing punctuation the
/// word before it; the emptied entries keep their tokens' count at zero
/// and are dropped when words are handed to segments.
fn merge_punctuation(words: &mut [Timed]) {
    if words.len() < 2 {
        return;
    }
    let mut following = words.len() - 1;
    for i in (0..words.len() - 1).rev() {
        let previous = &words[i];
        if previous.word.starts_with(' ') && PREPEND_PUNCTUATION.contains(previous.word.trim()) {
            let (head, tail) = words.split_at_mut(following);
            let (previous, next) = (&mut head[i], &mut tail[0]);
            next.word.insert_str(0, &previous.word);
            let mut tokens = std::mem::take(&mut previous.tokens);
            tokens.append(&mut next.tokens);
            next.tokens = tokens;
            previous.word.clear();
        } else {
            following = i;
        }
    }
    let mut kept = 0;
    for j in 1..words.len() {
        let (head, tail) = words.split_at_mut(j);
        let (previous, next) = (&mut head[kept], &mut tail[0]);
        if !previous.word.ends_with(' ') && APPEND_PUNCTUATION.contains(next.word.as_str()) {
            previous.word.push_str(&next.word);
            previous.tokens.append(&mut next.tokens);
            next.word.clear();
        } else {
            kept = j;
        }
    }
}

/// Hands one window's words to the segments they were decoded in (in
/// token order: `segment_tokens[i]` text tokens each), shifts them by the
/// window's offset, and moves segment edges that the words show to be in
/// silence. `last_speech` carries the end of speech across windows.
pub fn attach(
    segments: &mut [Segment],
    segment_tokens: &[usize],
    words: Vec<Timed>,
    time_offset: f64,
    median: f64,
    last_speech: &mut f64,
) {
    let max_duration = median * 2.0;
    let mut words = words.into_iter().peekable();
    for (segment, &tokens) in segments.iter_mut().zip(segment_tokens) {
        let mut taken = 0;
        let mut timed: Vec<Word> = Vec::new();
        while taken < tokens {
            let Some(word) = words.next() else { break };
            taken += word.tokens.len();
            if !word.word.is_empty() {
                timed.push(Word {
                    word: word.word,
                    start: round_ms(time_offset + word.start),
                    end: round_ms(time_offset + word.end),
                    probability: round_ms(word.probability),
                });
            }
        }
        // Emptied punctuation entries between segments carry no tokens.
        while words.peek().is_some_and(|w| w.tokens.is_empty()) {
            words.next();
        }
        if timed.is_empty() {
            continue;
        }
        fit_edges(segment, &mut timed, median, max_duration, *last_speech);
        *last_speech = segment.end;
        segment.words = timed;
    }
}

/// The sentences of an untimed segment (a window decoded without
/// timestamps) as segments of their own, timed by their words (`words` as
/// `attach` takes them, times relative to `time_offset`), each with its
/// count of text tokens for `attach`. A sentence ends at a word that ends
/// with `.`, `?` or `!`.
pub fn sentences(
    untimed: &Segment,
    words: &[Timed],
    time_offset: f64,
) -> (Vec<Segment>, Vec<usize>) {
    let mut segments = Vec::new();
    let mut counts = Vec::new();
    let mut sentence: Vec<&Timed> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        sentence.push(word);
        let ends = word
            .word
            .trim_end_matches(['"', '\'', ')', '»', '”'])
            .ends_with(['.', '?', '!', '。', '？', '！']);
        if !(ends || i + 1 == words.len()) {
            continue;
        }
        let timed: Vec<&&Timed> = sentence.iter().filter(|w| !w.word.is_empty()).collect();
        let tokens: Vec<u32> = sentence
            .iter()
            .flat_map(|w| w.tokens.iter().copied())
            .collect();
        if let (Some(first), Some(last)) = (timed.first(), timed.last()) {
            let text: String = timed.iter().map(|w| w.word.as_str()).collect();
            counts.push(tokens.len());
            segments.push(Segment {
                start: round_ms(time_offset + first.start),
                end: round_ms(time_offset + last.end),
                text: text.trim().to_owned(),
                tokens,
                words: Vec::new(),
                ..untimed.clone()
            });
        } else if let Some(previous) = counts.last_mut() {
            // Tokens without a word of their own belong to the sentence before.
            *previous += tokens.len();
            if let Some(segment) = segments.last_mut() {
                segment.tokens.extend(tokens);
            }
        }
        sentence.clear();
    }
    (segments, counts)
}

/// A first word that starts long after the previous speech and lasts too
/// long began in the pause: start it later. Then the segment and its words
/// agree on where speech starts and ends.
fn fit_edges(
    segment: &mut Segment,
    words: &mut [Word],
    median: f64,
    max_duration: f64,
    last_speech: f64,
) {
    let n = words.len();
    if words[0].end - last_speech > median * 4.0
        && (words[0].end - words[0].start > max_duration
            || (n > 1 && words[1].end - words[0].start > max_duration * 2.0))
    {
        if n > 1 && words[1].end - words[1].start > max_duration {
            let boundary = (words[1].end / 2.0).max(words[1].end - max_duration);
            words[0].end = boundary;
            words[1].start = boundary;
        }
        words[0].start = (words[0].end - max_duration).max(0.0);
    }
    if segment.start < words[0].end && segment.start - 0.5 > words[0].start {
        words[0].start = (words[0].end - median).min(segment.start).max(0.0);
    } else {
        segment.start = words[0].start;
    }
    let last = &mut words[n - 1];
    if segment.end > last.start && segment.end + 0.5 < last.end {
        last.end = (last.start + median).max(segment.end);
    } else {
        segment.end = last.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: token n decodes to `VOCAB[n]`.
    const VOCAB: [&str; 8] = [" And", " so", ",", " my", " fel", "low", " \"", "Amer"];

    fn decode(tokens: &[u32]) -> String {
        tokens.iter().map(|&t| VOCAB[t as usize]).collect()
    }

    fn timed(word: &str, tokens: Vec<u32>, start: f64, end: f64) -> Timed {
        Timed {
            word: word.into(),
            tokens,
            start,
            end,
            probability: 1.0,
        }
    }

    #[test]
    fn words_start_at_spaces_and_punctuation() {
        let words = split(&[0, 1, 2, 3, 4, 5], "en", decode);
        let texts: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(texts, [" And", " so", ",", " my", " fellow"]);
        assert_eq!(words[4].1, [4, 5]);
    }

    #[test]
    fn a_character_split_across_tokens_stays_in_one_piece() {
        // Bytes of "é" (C3 A9) in two tokens, as byte-level BPE can emit.
        let bytes: [&[u8]; 3] = [b" caf", &[0xC3], &[0xA9]];
        let decode = |tokens: &[u32]| {
            let all: Vec<u8> = tokens
                .iter()
                .flat_map(|&t| bytes[t as usize].to_vec())
                .collect();
            String::from_utf8_lossy(&all).into_owned()
        };
        let words = split(&[0, 1, 2], "fr", decode);
        assert_eq!(words, [(" café".to_owned(), vec![0, 1, 2])]);
        let pieces = split(&[0, 1, 2], "ja", decode);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
    }

    #[test]
    fn word_times_come_from_where_the_path_reaches_each_token() {
        let words = split(&[0, 1, 2], "en", decode);
        // Tokens 0,1,2 and end-of-text (3) first reached at 10, 30, 45, 50.
        let path = [
            (0, 10),
            (0, 11),
            (1, 30),
            (1, 31),
            (2, 45),
            (3, 50),
            (3, 60),
        ];
        let timed = from_alignment(words, &path, &[0.9, 0.5, 0.7, 0.1]);
        let spans: Vec<(f64, f64)> = timed.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(spans, [(0.2, 0.6), (0.6, 0.9), (0.9, 1.0)]);
        assert!((timed[1].probability - 0.5).abs() < 1e-6);
    }

    #[test]
    fn punctuation_joins_its_word_and_long_words_at_sentence_ends_are_cut() {
        let mut words = vec![
            timed(" so", vec![1], 0.0, 0.3),
            timed(",", vec![2], 0.3, 0.4),
            timed(" \"", vec![6], 0.4, 0.5),
            timed("Amer", vec![7], 0.5, 0.8),
            timed(".", vec![2], 0.8, 5.0),
        ];
        let median = tidy(&mut words);
        assert!((median - 0.3).abs() < 1e-9, "{median}");
        let kept: Vec<(&str, usize)> = words
            .iter()
            .filter(|w| !w.word.is_empty())
            .map(|w| (w.word.as_str(), w.tokens.len()))
            .collect();
        assert_eq!(kept, [(" so,", 2), (" \"Amer.", 3)]);
        // The full stop had swallowed a pause: cut to twice the median.
        assert!((words[4].end - 1.4).abs() < 1e-9);
    }

    #[test]
    fn words_go_to_their_segments_and_segment_edges_follow_speech() {
        let words = vec![
            Timed {
                word: " one".into(),
                tokens: vec![1],
                start: 0.5,
                end: 0.9,
                probability: 1.0,
            },
            Timed {
                word: " two".into(),
                tokens: vec![2, 3],
                start: 0.9,
                end: 1.3,
                probability: 1.0,
            },
            Timed {
                word: " three".into(),
                tokens: vec![4],
                start: 2.0,
                end: 2.4,
                probability: 1.0,
            },
        ];
        let mut segments = vec![
            Segment {
                start: 10.0,
                end: 11.4,
                text: "one two".into(),
                ..Segment::default()
            },
            Segment {
                start: 11.4,
                end: 12.4,
                text: "three".into(),
                ..Segment::default()
            },
        ];
        let mut last_speech = 0.0;
        attach(&mut segments, &[3, 1], words, 10.0, 0.4, &mut last_speech);
        assert_eq!(segments[0].words.len(), 2);
        assert_eq!(segments[1].words[0].word, " three");
        assert_eq!((segments[0].start, segments[0].end), (10.5, 11.3));
        assert_eq!((segments[1].start, segments[1].end), (12.0, 12.4));
        assert_eq!(last_speech, 12.4);
    }

    #[test]
    fn an_untimed_window_becomes_one_segment_per_sentence() {
        let words = vec![
            timed(" It", vec![1], 0.2, 0.4),
            timed(" rained.", vec![2, 3], 0.4, 0.9),
            // An emptied punctuation entry carries no tokens.
            timed("", vec![], 0.9, 0.9),
            timed(" Did", vec![4], 2.0, 2.2),
            timed(" it?\"", vec![5, 6], 2.2, 2.6),
            timed(" Yes", vec![7], 3.0, 3.3),
        ];
        let untimed = Segment {
            start: 5.0,
            end: 35.0,
            text: "It rained. Did it?\" Yes".into(),
            avg_logprob: Some(-0.2),
            ..Segment::default()
        };
        let (segments, tokens) = sentences(&untimed, &words, 5.0);
        let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["It rained.", "Did it?\"", "Yes"]);
        assert_eq!(tokens, [3, 3, 1]);
        let times: Vec<(f64, f64)> = segments.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(times, [(5.2, 5.9), (7.0, 7.6), (8.0, 8.3)]);
        assert_eq!(segments[1].tokens, [4, 5, 6]);
        assert!(segments.iter().all(|s| s.avg_logprob == Some(-0.2)));
    }
}
