//! Several texts in one translation job, and the job's answer cut back
//! into them. A LibreTranslate request (a list of `q`, the text nodes of
//! an HTML document) is one job: one admission, one quota reservation, one
//! waiting slot. The worker keeps paragraph breaks (`\n\n`) as they are,
//! so the pieces travel as paragraphs and come back one per paragraph.

use super::html::{self, Node};

/// What separates the pieces in the job's text.
const SEPARATOR: &str = "\n\n";

/// One `q`: the parts kept as sent and the paragraphs translated.
#[derive(Debug, Default)]
struct Unit {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Keep(String),
    /// The paragraph at this index of [`Batch::paragraphs`]; `html`: put
    /// back encoded for HTML.
    Translated {
        index: usize,
        html: bool,
    },
}

/// The texts of a request as one job's text.
#[derive(Debug, Default)]
pub struct Batch {
    units: Vec<Unit>,
    paragraphs: Vec<String>,
}

/// The job's answer did not cut back into the request's pieces.
#[derive(Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub sent: usize,
    pub received: usize,
}

impl Batch {
    /// Adds a plain text `q`.
    pub fn push_text(&mut self, text: &str) {
        let mut unit = Unit::default();
        self.add(&mut unit, text, false);
        self.units.push(unit);
    }

    /// Adds an HTML `q`: its text nodes translated, its markup kept.
    pub fn push_html(&mut self, document: &str) {
        let mut unit = Unit::default();
        for node in html::parse(document) {
            match node {
                Node::Markup(markup) => unit.parts.push(Part::Keep(markup.to_owned())),
                Node::Text(text) => {
                    // Whitespace around the words stays as it came; inside
                    // them a run with line breaks reads as one space in
                    // HTML, so it may not look like a paragraph break.
                    let start = text.len() - text.trim_start().len();
                    let end = text.trim_end().len().max(start);
                    if start > 0 {
                        unit.parts.push(Part::Keep(text[..start].to_owned()));
                    }
                    if start < end {
                        let words = html::decode(&text[start..end]);
                        self.add(&mut unit, &collapse_breaks(&words), true);
                    }
                    if end < text.len() {
                        unit.parts.push(Part::Keep(text[end..].to_owned()));
                    }
                }
            }
        }
        self.units.push(unit);
    }

    /// `text`'s paragraphs, with the whitespace around them kept.
    fn add(&mut self, unit: &mut Unit, text: &str, html: bool) {
        let mut rest = text;
        while !rest.is_empty() {
            let start = rest.len() - rest.trim_start().len();
            if start > 0 {
                unit.parts.push(Part::Keep(keep(&rest[..start], html)));
                rest = &rest[start..];
            }
            if rest.is_empty() {
                break;
            }
            let end = paragraph_end(rest);
            let paragraph = rest[..end].trim_end();
            unit.parts.push(Part::Translated {
                index: self.paragraphs.len(),
                html,
            });
            self.paragraphs.push(paragraph.to_owned());
            rest = &rest[paragraph.len()..];
        }
    }

    /// Whether there is anything to translate.
    pub fn is_empty(&self) -> bool {
        self.paragraphs.is_empty()
    }

    /// The job's text.
    pub fn text(&self) -> String {
        self.paragraphs.join(SEPARATOR)
    }

    /// Each `q` rebuilt from a translation of [`Self::text`].
    pub fn rebuild(&self, translated: &str) -> Result<Vec<String>, Mismatch> {
        let pieces: Vec<&str> = translated.split(SEPARATOR).collect();
        if pieces.len() != self.paragraphs.len() {
            return Err(Mismatch {
                sent: self.paragraphs.len(),
                received: pieces.len(),
            });
        }
        Ok(self
            .units
            .iter()
            .map(|unit| {
                unit.parts
                    .iter()
                    .map(|part| match part {
                        Part::Keep(kept) => kept.clone(),
                        Part::Translated { index, html } => {
                            let piece = pieces.get(*index).map_or("", |p| p.trim());
                            if *html {
                                html::encode(piece)
                            } else {
                                piece.to_owned()
                            }
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

/// Kept whitespace, encoded back for HTML (a no-break space was `&nbsp;`).
fn keep(whitespace: &str, html: bool) -> String {
    if html {
        html::encode(whitespace)
    } else {
        whitespace.to_owned()
    }
}

/// Where the paragraph at the start of `text` ends: at a run of
/// whitespace holding two line breaks, or the end.
fn paragraph_end(text: &str) -> usize {
    let mut run_start = None;
    let mut breaks = 0;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            let start = *run_start.get_or_insert(at);
            breaks += usize::from(c == '\n');
            if breaks >= 2 {
                return start;
            }
        } else {
            run_start = None;
            breaks = 0;
        }
    }
    text.len()
}

/// Every whitespace run that holds a line break, as one line break.
fn collapse_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            run.push(c);
            continue;
        }
        flush(&mut out, &mut run);
        out.push(c);
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut String) {
    if run.contains('\n') {
        out.push('\n');
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the worker does to the text's shape: each paragraph changed,
    /// the breaks between them kept.
    fn upper(text: &str) -> String {
        text.to_uppercase()
    }

    #[test]
    fn texts_and_their_paragraphs_come_back_in_their_places() {
        let mut batch = Batch::default();
        batch.push_text("  One. Two.\n\n \n Three.\nFour.  ");
        batch.push_text("");
        batch.push_text("five");
        assert_eq!(batch.text(), "One. Two.\n\nThree.\nFour.\n\nfive");
        let out = batch.rebuild(&upper(&batch.text())).expect("fits");
        assert_eq!(out, ["  ONE. TWO.\n\n \n THREE.\nFOUR.  ", "", "FIVE"]);
    }

    #[test]
    fn html_keeps_its_markup_and_entities() {
        let mut batch = Batch::default();
        batch.push_html(
            "<p title=\"x\">Tom &amp; Jerry&nbsp;run</p>\n  <br/><b>&copy; now</b><script>var a;</script>",
        );
        assert_eq!(batch.text(), "Tom & Jerry\u{a0}run\n\n&copy; now");
        let out = batch.rebuild(&upper(&batch.text())).expect("fits");
        assert_eq!(
            out,
            ["<p title=\"x\">TOM &amp; JERRY&nbsp;RUN</p>\n  <br/><b>&COPY; NOW</b><script>var a;</script>"]
        );
    }

    #[test]
    fn a_line_break_run_inside_an_html_node_is_not_a_paragraph_break() {
        let mut batch = Batch::default();
        batch.push_html("<p>one\n\n\ttwo</p>");
        assert_eq!(batch.text(), "one\ntwo");
    }

    #[test]
    fn an_answer_of_another_shape_is_refused() {
        let mut batch = Batch::default();
        batch.push_text("a");
        batch.push_text("b");
        assert_eq!(
            batch.rebuild("A"),
            Err(Mismatch {
                sent: 2,
                received: 1
            })
        );
        assert!(Batch::default().is_empty());
    }
}
