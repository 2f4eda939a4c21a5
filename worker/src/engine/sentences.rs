//! Splitting a text into sentences for translation and putting the
//! translations back in its shape: sentence models translate sentences, and
//! a document's paragraph breaks must survive.

/// Longest piece sent to the model, in characters: translation models are
/// trained on sentences and degrade (or truncate) on longer inputs.
const MAX_PIECE_CHARS: usize = 400;

/// Abbreviations whose period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "fig",
    "approx", "inc", "ltd", "co",
];

/// Where each sentence goes when the text is rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Sentence,
    /// Whitespace that holds a line break, kept as it was.
    Break(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pieces: Vec<Piece>,
}

/// The sentences of `text` in order, and the layout that rebuilds it.
pub fn split(text: &str) -> (Vec<String>, Layout) {
    let mut sentences = Vec::new();
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let (line, after) = rest.split_at(line_end);
        for sentence in split_line(line) {
            sentences.push(sentence);
            pieces.push(Piece::Sentence);
        }
        // The run of whitespace holding this line break, kept verbatim.
        let brk_len = after
            .char_indices()
            .find(|(_, c)| !c.is_whitespace())
            .map_or(after.len(), |(i, _)| i);
        if brk_len > 0 {
            pieces.push(Piece::Break(after[..brk_len].to_owned()));
        }
        rest = &after[brk_len..];
    }
    (sentences, Layout { pieces })
}

/// `translated` (one per sentence of `split`) in the original's shape:
/// sentences of one line joined by a space, line breaks as they were.
pub fn join(layout: &Layout, translated: &[String]) -> String {
    let mut out = String::new();
    let mut next = translated.iter();
    let mut line_started = false;
    for piece in &layout.pieces {
        match piece {
            Piece::Sentence => {
                if line_started {
                    out.push(' ');
                }
                out.push_str(next.next().map_or("", |s| s.trim()));
                line_started = true;
            }
            Piece::Break(whitespace) => {
                out.push_str(whitespace);
                line_started = false;
            }
        }
    }
    out
}

fn split_line(line: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (k, &(i, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…') {
            continue;
        }
        // Closing quotes and brackets belong to the sentence they close.
        let mut end_k = k + 1;
        while chars
            .get(end_k)
            .is_some_and(|(_, c)| matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '»'))
        {
            end_k += 1;
        }
        let end = chars.get(end_k).map_or(line.len(), |&(j, _)| j);
        let followed_by_space = chars.get(end_k).is_none_or(|(_, c)| c.is_whitespace());
        let cjk = matches!(c, '。' | '！' | '？');
        if !(followed_by_space || cjk) || (c == '.' && is_abbreviation(&line[start..i])) {
            continue;
        }
        push_piece(&mut out, &line[start..end]);
        start = end;
    }
    push_piece(&mut out, &line[start..]);
    out
}

fn is_abbreviation(before_period: &str) -> bool {
    let word = before_period
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    // A single letter is an initial ("J. Smith").
    ABBREVIATIONS.contains(&lower.as_str())
        || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
}

/// Adds a trimmed sentence, cut at word boundaries if it is too long.
fn push_piece(out: &mut Vec<String>, sentence: &str) {
    let mut rest = sentence.trim();
    while rest.chars().count() > MAX_PIECE_CHARS {
        let limit = rest
            .char_indices()
            .nth(MAX_PIECE_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let cut = rest[..limit]
            .rfind(|c: char| c.is_whitespace())
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        out.push(rest[..cut].trim().to_owned());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_terminal_punctuation_but_not_abbreviations() {
        let (s, _) = split("Dr. Smith arrived. He said \"hi!\" Then left? Yes… e.g. this.");
        assert_eq!(
            s,
            [
                "Dr. Smith arrived.",
                "He said \"hi!\"",
                "Then left?",
                "Yes…",
                "e.g. this."
            ]
        );
        let (s, _) = split("Pi is 3.14 exactly. J. R. R. Tolkien wrote.");
        assert_eq!(s, ["Pi is 3.14 exactly.", "J. R. R. Tolkien wrote."]);
        let (s, _) = split("你好。再见。");
        assert_eq!(s, ["你好。", "再见。"]);
    }

    #[test]
    fn paragraph_breaks_survive_the_round_trip() {
        let text = "First one. Second one.\n\nNew paragraph.\nLine two.\n";
        let (sentences, layout) = split(text);
        assert_eq!(sentences.len(), 4);
        let upper: Vec<String> = sentences.iter().map(|s| s.to_uppercase()).collect();
        assert_eq!(
            join(&layout, &upper),
            "FIRST ONE. SECOND ONE.\n\nNEW PARAGRAPH.\nLINE TWO.\n"
        );
    }

    #[test]
    fn over_long_sentences_are_cut_at_spaces() {
        let long = "word ".repeat(200);
        let (s, _) = split(&long);
        assert!(s.len() >= 3);
        assert!(s.iter().all(|p| p.chars().count() <= MAX_PIECE_CHARS));
        assert_eq!(s.join(" "), long.trim());
    }
}
