//! Transcript renderings for `GET /v1/jobs/{id}?format=`: SRT and WebVTT,
//! with the segments cut into readable cues (`cues`).

mod cues;

use crate::job::Segment;

pub use cues::{cues, Cue, LINE_CHARS, MAX_CHARS, MAX_SECONDS};

/// `HH:MM:SS{sep}mmm`; SRT uses a comma, WebVTT a dot.
fn timestamp(seconds: f64, sep: char) -> String {
    let total_ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// `-->` inside text would be read as a timing line; the cue's own line
/// break is kept, and no blank line (which ends a cue) can occur.
fn cue_text(text: &str) -> String {
    text.replace("-->", "->")
}

pub fn srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in cues(segments).iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(s.start, ','),
            timestamp(s.end, ','),
            cue_text(&s.text)
        ));
    }
    out
}

pub fn vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in &cues(segments) {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(s.start, '.'),
            timestamp(s.end, '.'),
            cue_text(&s.text)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments() -> Vec<Segment> {
        vec![
            Segment {
                start: 0.0,
                end: 2.5,
                text: "Hello there.".into(),
                ..Segment::default()
            },
            Segment {
                start: 3661.042,
                end: 3662.0,
                text: "Line\n\nbreak --> arrow".into(),
                ..Segment::default()
            },
        ]
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        assert_eq!(
            srt(&segments()),
            "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n01:01:01,042 --> 01:01:02,000\nLine break -> arrow\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_uses_dots() {
        let out = vtt(&segments());
        assert!(out.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"));
        assert!(out.contains("01:01:01.042 --> 01:01:02.000\nLine break -> arrow\n"));
    }
}
