//! Generated test speech: espeak-ng says the sentences, ffmpeg transcodes.

use std::path::Path;
use std::process::Command;

/// Sentences that espeak-ng pronounces clearly enough for tiny.en.
pub const SENTENCES: &[&str] = &[
    "I would like to order a cup of coffee.",
    "Thank you very much for your help yesterday.",
    "The children are playing in the park after school.",
    "Can you tell me where the nearest hospital is?",
];

pub fn text() -> String {
    SENTENCES.join(" ")
}

pub fn espeak_wav(dir: &Path, text: &str) -> std::path::PathBuf {
    espeak_wav_voice(dir, "en-us", text)
}

/// `text` spoken by the espeak-ng voice `voice` (`es`, `de`, …).
pub fn espeak_wav_voice(dir: &Path, voice: &str, text: &str) -> std::path::PathBuf {
    let out = dir.join(format!("speech-{}.wav", uuid::Uuid::new_v4().simple()));
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "140", "-w"])
        .arg(&out)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (ops/stack.sh)");
    assert!(status.success(), "espeak-ng failed");
    out
}

/// Transcodes to `format` (wav, mp3, flac, ogg) at `rate` Hz and `channels`.
pub fn transcode(source: &Path, format: &str, rate: u32, channels: u32) -> Vec<u8> {
    let out = source.with_file_name(format!(
        "{}-{rate}-{channels}.{format}",
        source.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
    ));
    let codec = match format {
        "wav" => "pcm_s16le",
        "mp3" => "libmp3lame",
        "flac" => "flac",
        "ogg" => "libvorbis",
        other => panic!("unknown format {other}"),
    };
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(source)
        .args([
            "-ar",
            &rate.to_string(),
            "-ac",
            &channels.to_string(),
            "-c:a",
            codec,
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (ops/stack.sh)");
    assert!(
        status.success(),
        "ffmpeg failed for {format} {rate} {channels}"
    );
    std::fs::read(&out).expect("transcoded file")
}

/// `text` spoken as a 16 kHz mono WAV, in a temporary directory.
pub fn wav_16k(text: &str) -> Vec<u8> {
    wav_16k_voice("en-us", text)
}

pub fn wav_16k_voice(voice: &str, text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    transcode(&espeak_wav_voice(dir.path(), voice, text), "wav", 16_000, 1)
}
