//! What a transcript becomes on disk: the formats, where each file goes
//! (beside its audio, or mirrored under `--out`), whether a file's
//! outputs are already there, and writing them whole.

use std::path::{Path, PathBuf};

use voxq_shared::job::TranscriptResult;

use super::discover::Input;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// The transcript as plain text.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// The whole result: text, segments with their timings (and words with
    /// --word-timestamps), language, duration.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
        }
    }

    /// The file's contents, rendered here by the same code the API's
    /// `?format=` uses, so one read of the job gives every format.
    pub fn render(self, result: &serde_json::Value) -> Result<String> {
        if self == Format::Json {
            let mut json =
                serde_json::to_string_pretty(result).map_err(|e| Error::Protocol(e.to_string()))?;
            json.push('\n');
            return Ok(json);
        }
        let transcript: TranscriptResult = serde_json::from_value(result.clone())
            .map_err(|e| Error::Protocol(format!("a transcript: {e}")))?;
        Ok(match self {
            Format::Txt => transcript.text + "\n",
            Format::Srt => voxq_shared::subtitles::srt(&transcript.segments),
            _ => voxq_shared::subtitles::vtt(&transcript.segments),
        })
    }
}

/// Where one input's outputs go.
#[derive(Debug, Clone)]
pub struct Plan {
    pub input: Input,
    pub outputs: Vec<(Format, PathBuf)>,
}

impl Plan {
    pub fn new(input: Input, formats: &[Format], out: Option<&Path>) -> Self {
        // `talk.wav` → `talk.txt`: beside the audio, or at the audio's
        // relative path under --out.
        let stem_path = match out {
            Some(dir) => dir.join(&input.relative),
            None => input.path.clone(),
        };
        let outputs = formats
            .iter()
            .map(|&format| (format, stem_path.with_extension(format.extension())))
            .collect();
        Self { input, outputs }
    }

    /// Done: every output exists and is no older than the audio. Outputs
    /// are written whole (renamed into place), so one that exists is
    /// complete; one older than its audio is of an earlier recording.
    pub fn is_done(&self) -> bool {
        let Some(audio_changed) = modified(&self.input.path) else {
            return false;
        };
        self.outputs
            .iter()
            .all(|(_, path)| modified(path).is_some_and(|written| written >= audio_changed))
    }

    /// Writes every output, each to a temporary file beside it and then
    /// renamed over it, so that an interrupted run leaves no half file
    /// that a later run would take as done. (Not `tempfile`: its files
    /// are private to their owner, and transcripts should get the usual
    /// permissions.) The process id keeps two runs' temporary files apart;
    /// within one run no two inputs share an output ([`collisions`]).
    pub fn write(&self, result: &serde_json::Value) -> Result<()> {
        for (format, path) in &self.outputs {
            let body = format.render(result)?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let partial = dir.join(format!(".{name}.{}.voxq-part", std::process::id()));
            let written = std::fs::write(&partial, body.as_bytes())
                .and_then(|()| std::fs::rename(&partial, path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(Error::io(path, e));
            }
        }
        Ok(())
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Outputs that two inputs would both write (`a.wav` and `a.mp3` side by
/// side, or two folders' `x.wav` under one --out): each such path once.
pub fn collisions(plans: &[Plan]) -> Vec<PathBuf> {
    let mut owners: std::collections::HashMap<&Path, &Path> = std::collections::HashMap::new();
    let mut clashes = Vec::new();
    for plan in plans {
        for (_, output) in &plan.outputs {
            if let Some(owner) = owners.insert(output.as_path(), plan.input.path.as_path()) {
                if owner != plan.input.path.as_path() && !clashes.contains(output) {
                    clashes.push(output.clone());
                }
            }
        }
    }
    clashes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str, relative: &str) -> Input {
        Input {
            path: PathBuf::from(path),
            relative: PathBuf::from(relative),
        }
    }

    #[test]
    fn outputs_go_beside_the_audio_or_mirror_its_relative_path() {
        let formats = [Format::Txt, Format::Srt];
        let beside = Plan::new(input("calls/a/b.wav", "a/b.wav"), &formats, None);
        assert_eq!(beside.outputs[0].1, PathBuf::from("calls/a/b.txt"));
        let out = Plan::new(
            input("calls/a/b.wav", "a/b.wav"),
            &formats,
            Some(Path::new("out")),
        );
        assert_eq!(out.outputs[1].1, PathBuf::from("out/a/b.srt"));
        let twin = Plan::new(input("calls/a/b.mp3", "a/b.mp3"), &formats, None);
        assert_eq!(
            collisions(&[beside, twin]),
            vec![
                PathBuf::from("calls/a/b.txt"),
                PathBuf::from("calls/a/b.srt")
            ]
        );
    }

    #[test]
    fn text_and_subtitles_render_from_the_result() {
        let result = serde_json::json!({
            "text": "Hello there.",
            "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": "Hello there."}],
            "language": "en",
            "duration": 1.5
        });
        assert_eq!(Format::Txt.render(&result).expect("txt"), "Hello there.\n");
        let srt = Format::Srt.render(&result).expect("srt");
        assert!(srt.contains("00:00:00,000 --> 00:00:01,500"), "{srt}");
        assert!(Format::Vtt
            .render(&result)
            .expect("vtt")
            .starts_with("WEBVTT"));
    }
}
