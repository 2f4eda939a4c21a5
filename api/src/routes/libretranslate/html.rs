//! HTML cut into markup, kept byte for byte, and text, translated:
//! LibreTranslate's `format: html`. A forgiving single pass with no
//! recursion and no tree, so hostile input (unclosed tags, deep nesting,
//! stray `<`) costs time and memory linear in its length and never panics.

/// One piece of a document.
#[derive(Debug, PartialEq, Eq)]
pub enum Node<'a> {
    /// Tags, comments, doctypes, `<script>`/`<style>` bodies: kept as sent.
    Markup(&'a str),
    /// Character data between tags, entities still encoded.
    Text(&'a str),
}

/// Elements whose content is not text to translate (raw text elements).
const RAW: &[&str] = &["script", "style"];

/// The document's pieces in order; concatenated they are the input.
pub fn parse(html: &str) -> Vec<Node<'_>> {
    let bytes = html.as_bytes();
    let mut nodes = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' || !starts_markup(&bytes[i + 1..]) {
            i += 1;
            continue;
        }
        if text_start < i {
            nodes.push(Node::Text(&html[text_start..i]));
        }
        let end = markup_end(bytes, i);
        // A raw text element's body runs to its end tag, whatever it holds.
        let end = match raw_element(&html[i..end]) {
            Some(name) => raw_end(html, end, name),
            None => end,
        };
        nodes.push(Node::Markup(&html[i..end]));
        i = end;
        text_start = end;
    }
    if text_start < html.len() {
        nodes.push(Node::Text(&html[text_start..]));
    }
    nodes
}

/// `<` opens markup only before a tag name, `/`, `!` or `?` (as browsers
/// read it); otherwise it is a literal less-than sign in the text.
fn starts_markup(after: &[u8]) -> bool {
    after
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'/' | b'!' | b'?'))
}

/// The byte after the markup starting at `start`: a comment runs to
/// `-->`, a tag to the first `>` outside quoted attribute values; an
/// unterminated one runs to the end of the input.
fn markup_end(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"<!--") {
        return find(bytes, start + 4, b"-->").map_or(bytes.len(), |at| at + 3);
    }
    let mut quote = None;
    for (offset, &b) in bytes[start + 1..].iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return start + 1 + offset + 1,
            (None, _) => {}
        }
    }
    bytes.len()
}

/// `script` or `style` when `tag` opens one of them.
fn raw_element(tag: &str) -> Option<&'static str> {
    let name: String = tag
        .get(1..)?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    RAW.iter()
        .copied()
        .find(|raw| name.eq_ignore_ascii_case(raw))
        .filter(|_| !tag.ends_with("/>"))
}

/// Where the raw element `name`'s body and end tag end, from `from`.
fn raw_end(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut at = from;
    while let Some(open) = find(bytes, at, b"</") {
        let after = &bytes[open + 2..];
        let closes = after.len() >= name.len()
            && after[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && after
                .get(name.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric());
        if closes {
            return markup_end(bytes, open);
        }
        at = open + 2;
    }
    bytes.len()
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The text a reader sees: the entities voxq knows decoded (the five of
/// XML, `&nbsp;`, numeric references); any other `&…;` left as written.
pub fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character an entity at the start of `s` stands for, and its length.
fn entity(s: &str) -> Option<(char, usize)> {
    // The longest reference decoded: `&#x10FFFF;` and `&nbsp;` fit.
    let end = s.get(..12).unwrap_or(s).find(';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let number = name.strip_prefix('#')?;
            let value = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(value).filter(|c| *c != '\0')?
        }
    };
    Some((c, end + 1))
}

/// Translated text made safe to put back between tags: the characters
/// that would start markup, no-break spaces and bare ampersands encoded.
/// A named reference `decode` left alone (`&copy;`) is kept as it came,
/// so entities voxq does not know survive the round trip.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        match c {
            '&' if unknown_reference(&text[at..]) => out.push('&'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            _ => out.push(c),
        }
    }
    out
}

/// `&name;` with a name `decode` does not decode (and so left as written).
fn unknown_reference(s: &str) -> bool {
    let Some(end) = s.get(..40).unwrap_or(s).find(';') else {
        return false;
    };
    let name = &s[1..end];
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && entity(s).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuilt(html: &str) -> String {
        parse(html)
            .iter()
            .map(|n| match n {
                Node::Markup(s) | Node::Text(s) => *s,
            })
            .collect()
    }

    #[test]
    fn tags_attributes_and_comments_are_markup_and_text_between_them_is_text() {
        let html = r#"<p class="a>b">Hello <b>world</b>!<!-- x > y --></p>"#;
        assert_eq!(
            parse(html),
            vec![
                Node::Markup(r#"<p class="a>b">"#),
                Node::Text("Hello "),
                Node::Markup("<b>"),
                Node::Text("world"),
                Node::Markup("</b>"),
                Node::Text("!"),
                Node::Markup("<!-- x > y -->"),
                Node::Markup("</p>"),
            ]
        );
    }

    #[test]
    fn script_and_style_bodies_are_not_text() {
        let html = "<script>if (a < b) { x = '</p>'; }</script>Hi<STYLE>p{}</style >";
        assert_eq!(
            parse(html),
            vec![
                Node::Markup("<script>if (a < b) { x = '</p>'; }</script>"),
                Node::Text("Hi"),
                Node::Markup("<STYLE>p{}</style >"),
            ]
        );
    }

    #[test]
    fn hostile_input_round_trips_without_panicking() {
        let nested = "<div>".repeat(10_000) + "x" + &"</div>".repeat(10_000);
        for html in [
            "<",
            "a < b",
            "<p",
            "<p class=\"unterminated>text",
            "<!-- never closed",
            "<script>never closed",
            "<script/>after",
            "&",
            "&#xZZ;",
            "&#0;",
            "&#1114112;",
            "é<ü>ß",
            nested.as_str(),
        ] {
            assert_eq!(rebuilt(html), html);
            let _ = decode(html);
        }
        assert_eq!(parse("a < b"), vec![Node::Text("a < b")]);
    }

    #[test]
    fn entities_decode_and_encode_back() {
        let text = "Tom &amp; Jerry&nbsp;&lt;3 &#233;&#x263A; &copy; & more";
        let decoded = decode(text);
        assert_eq!(decoded, "Tom & Jerry\u{a0}<3 é☺ &copy; & more");
        assert_eq!(
            encode(&decoded),
            "Tom &amp; Jerry&nbsp;&lt;3 é☺ &copy; &amp; more"
        );
    }
}
