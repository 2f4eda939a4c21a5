//! Cutting segments into subtitle cues a viewer can read: one sentence per
//! cue at most, and no cue longer than two lines or [`MAX_SECONDS`].
//!
//! A Whisper segment can hold several sentences, and a 30 s window of fast
//! speech several hundred characters: shown as one cue it covers the
//! screen for half a minute. Cue boundaries come from the words' own
//! timings when the job asked for them; otherwise each word's time is
//! interpolated from its place in the segment's text.

use crate::job::Segment;

/// Characters on one line of a cue (the common broadcast guideline).
pub const LINE_CHARS: usize = 42;
/// Two lines.
pub const MAX_CHARS: usize = 2 * LINE_CHARS;
/// The longest a cue stays on screen.
pub const MAX_SECONDS: f64 = 7.0;

/// One subtitle: its time and its text, already wrapped onto at most two
/// lines where it fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

struct Word<'a> {
    text: &'a str,
    start: f64,
    end: f64,
}

/// The cues of a transcript, in segment order; empty segments give none.
pub fn cues(segments: &[Segment]) -> Vec<Cue> {
    let mut out = Vec::new();
    for segment in segments {
        let words = words(segment);
        for sentence in sentences(&words) {
            split(sentence, &mut out);
        }
    }
    out
}

/// The segment's words with times: the decoded ones, or, without them,
/// times spread over the segment in proportion to the characters before
/// each word.
fn words(segment: &Segment) -> Vec<Word<'_>> {
    let decoded: Vec<Word<'_>> = segment
        .words
        .iter()
        .filter(|w| !w.word.trim().is_empty())
        .map(|w| Word {
            text: w.word.trim(),
            start: w.start,
            end: w.end.max(w.start),
        })
        .collect();
    if !decoded.is_empty() {
        return decoded;
    }
    let text = segment.text.as_str();
    let total = text.chars().count().max(1) as f64;
    let span = (segment.end - segment.start).max(0.0);
    let at = |chars: usize| segment.start + span * chars as f64 / total;
    let mut out = Vec::new();
    let mut chars = 0;
    let mut word_start: Option<(usize, usize)> = None; // (byte, char)
    for (byte, c) in text.char_indices() {
        match (c.is_whitespace(), word_start) {
            (false, None) => word_start = Some((byte, chars)),
            (true, Some((b, ch))) => {
                out.push(Word {
                    text: &text[b..byte],
                    start: at(ch),
                    end: at(chars),
                });
                word_start = None;
            }
            _ => {}
        }
        chars += 1;
    }
    if let Some((b, ch)) = word_start {
        out.push(Word {
            text: &text[b..],
            start: at(ch),
            end: at(chars),
        });
    }
    out
}

/// Runs of words that each end a sentence, the last possibly unfinished.
fn sentences<'w, 'a>(words: &'w [Word<'a>]) -> Vec<&'w [Word<'a>]> {
    let mut out = Vec::new();
    let mut from = 0;
    for (i, word) in words.iter().enumerate() {
        if ends_sentence(word.text, words.get(i + 1).map(|w| w.text)) {
            out.push(&words[from..=i]);
            from = i + 1;
        }
    }
    if from < words.len() {
        out.push(&words[from..]);
    }
    out
}

/// Whether a word ends its sentence: a question or exclamation mark, or a
/// full stop (closing quotes and brackets after it allowed) that is not an
/// abbreviation's or initial's ("Dr. Smith", "J. Doe") and is not followed
/// by a word in lower case ("at 3 p.m. today").
fn ends_sentence(word: &str, next: Option<&str>) -> bool {
    let core = word.trim_end_matches(['"', '\'', ')', ']', '»', '”', '’']);
    let Some(last) = core.chars().last() else {
        return false;
    };
    if matches!(last, '?' | '!' | '…' | '。' | '？' | '！') {
        return true;
    }
    if last != '.' {
        return false;
    }
    let stem = core.trim_end_matches('.');
    let initial = stem.chars().count() == 1 && stem.chars().all(char::is_uppercase);
    let abbreviation = [
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e",
    ]
    .contains(&stem.to_lowercase().as_str());
    let continues = next
        .and_then(|n| n.chars().find(|c| c.is_alphabetic()))
        .is_some_and(char::is_lowercase);
    !(initial || abbreviation || continues || stem.is_empty())
}

fn joined(words: &[Word<'_>]) -> String {
    words.iter().map(|w| w.text).collect::<Vec<_>>().join(" ")
}

fn fits(words: &[Word<'_>]) -> bool {
    let seconds = words.last().map_or(0.0, |l| l.end) - words.first().map_or(0.0, |f| f.start);
    let text = joined(words);
    seconds <= MAX_SECONDS && (text.chars().count() <= LINE_CHARS || line_break(&text).is_some())
}

/// Pushes `words` as one cue, or, when it is too long to read, as several:
/// each as long as fits, ending after a comma or similar pause where one
/// falls in its second half. A single word too long for a cue stays whole.
fn split(words: &[Word<'_>], out: &mut Vec<Cue>) {
    let mut rest = words;
    while !rest.is_empty() {
        let mut take = 1;
        while take < rest.len() && fits(&rest[..=take]) {
            take += 1;
        }
        if take < rest.len() {
            let pause = (take.div_ceil(2)..take)
                .rev()
                .find(|&n| rest[n - 1].text.ends_with([',', ';', ':', '—', '–']));
            take = pause.unwrap_or(take);
        }
        let (cue, next) = rest.split_at(take);
        let (Some(first), Some(last)) = (cue.first(), cue.last()) else {
            return;
        };
        out.push(Cue {
            start: first.start,
            end: last.end.max(first.start),
            text: wrap(&joined(cue)),
        });
        rest = next;
    }
}

/// Where to break `text` onto two lines: the space nearest its middle,
/// which makes the longer line as short as it can be; `None` when even
/// that line is over [`LINE_CHARS`].
fn line_break(text: &str) -> Option<usize> {
    let chars = text.chars().count();
    let (at, byte) = text
        .char_indices()
        .enumerate()
        .filter(|(_, (_, c))| *c == ' ')
        .map(|(n, (byte, _))| (n, byte))
        .min_by_key(|(n, _)| n.abs_diff(chars / 2))?;
    (at.max(chars - at - 1) <= LINE_CHARS).then_some(byte)
}

/// Text over one line's length on two lines, where they fit.
fn wrap(text: &str) -> String {
    if text.chars().count() <= LINE_CHARS {
        return text.to_owned();
    }
    match line_break(text) {
        Some(byte) => format!("{}\n{}", &text[..byte], &text[byte + 1..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Word as Timed;

    fn segment(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.into(),
            ..Segment::default()
        }
    }

    #[test]
    fn a_segment_of_three_sentences_gives_three_cues_timed_by_their_characters() {
        // 12 + 1 + 18 + 1 + 10 = 42 characters over 4.2 s: 0.1 s each.
        let cues = cues(&[segment(
            10.0,
            14.2,
            "Hello there. How are you today? Fine, yes.",
        )]);
        let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["Hello there.", "How are you today?", "Fine, yes."]);
        assert!((cues[0].start - 10.0).abs() < 1e-9, "{cues:?}");
        assert!((cues[0].end - 11.2).abs() < 1e-9, "{cues:?}");
        assert!((cues[1].start - 11.3).abs() < 1e-9, "{cues:?}");
        assert!((cues[2].end - 14.2).abs() < 1e-9, "{cues:?}");
    }

    #[test]
    fn word_timings_set_the_cue_boundaries_when_present() {
        let timed = |word: &str, start, end| Timed {
            word: word.into(),
            start,
            end,
            probability: 0.9,
        };
        let mut s = segment(0.0, 30.0, " Stop. Go on.");
        s.words = vec![
            timed(" Stop.", 1.0, 1.4),
            timed(" Go", 20.0, 20.3),
            timed(" on.", 20.3, 20.8),
        ];
        let cues = cues(&[s]);
        assert_eq!(
            cues,
            [
                Cue {
                    start: 1.0,
                    end: 1.4,
                    text: "Stop.".into()
                },
                Cue {
                    start: 20.0,
                    end: 20.8,
                    text: "Go on.".into()
                },
            ]
        );
    }

    #[test]
    fn abbreviations_initials_and_decimals_do_not_end_a_sentence() {
        let text = "Dr. Smith met J. Doe at 3.5 p.m. today, e.g. here. Then he left.";
        let cues = cues(&[segment(0.0, 6.0, text)]);
        assert_eq!(cues.len(), 2, "{cues:?}");
        assert_eq!(
            cues[0].text.replace('\n', " "),
            "Dr. Smith met J. Doe at 3.5 p.m. today, e.g. here."
        );
        assert_eq!(cues[1].text, "Then he left.");
    }

    #[test]
    fn a_long_sentence_is_cut_at_a_pause_into_readable_cues() {
        let text = "The committee met on Tuesday to discuss the budget, the schedule and the \
                    plans for next year, and after a long debate it agreed on everything.";
        let cues = cues(&[segment(0.0, 9.0, text)]);
        assert!(cues.len() >= 2, "{cues:?}");
        for cue in &cues {
            let chars = cue.text.replace('\n', " ").chars().count();
            assert!(chars <= MAX_CHARS, "{cue:?}");
            assert!(cue.end - cue.start <= MAX_SECONDS + 1e-9, "{cue:?}");
            assert!(
                cue.text.lines().all(|l| l.chars().count() <= LINE_CHARS),
                "{cue:?}"
            );
            assert!(cue.text.lines().count() <= 2, "{cue:?}");
        }
        assert!(cues[0].text.replace('\n', " ").ends_with(','), "{cues:?}");
        let all: Vec<String> = cues.iter().map(|c| c.text.replace('\n', " ")).collect();
        assert_eq!(
            all.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    #[test]
    fn a_long_stretch_of_short_words_is_cut_by_time_as_well() {
        let words = "go ".repeat(20);
        let cues = cues(&[segment(0.0, 20.0, &words)]);
        assert!(cues.len() >= 3, "{cues:?}");
        assert!(
            cues.iter().all(|c| c.end - c.start <= MAX_SECONDS + 1e-9),
            "{cues:?}"
        );
    }

    #[test]
    fn empty_segments_and_unspaced_text_are_handled() {
        assert!(cues(&[segment(0.0, 1.0, "   ")]).is_empty());
        let long = "字".repeat(120);
        let cues = cues(&[segment(0.0, 5.0, &long)]);
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].text, long);
    }
}
