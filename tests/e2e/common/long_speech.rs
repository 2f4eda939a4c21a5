//! A long generated recording as users send them: sentences separated by
//! pauses of 0.5–3 s, a long stretch of near-silence in the middle and a
//! faint noise floor throughout, with the true start and end of every
//! sentence, so that timestamps can be checked, not only the text.

use std::process::Command;

use super::speech;

/// Sentences that espeak-ng says clearly enough for tiny.en; no five
/// words follow each other twice in them, so a repeated five-word run in
/// a transcript is a repetition the decoder invented. With the pauses and
/// a 40 s silence they last over four minutes; `ops/bench/longform.sh`
/// speaks them too.
pub const SENTENCES: &[&str] = &[
    "The weather was warm and sunny all week.",
    "My brother works at a small bakery downtown.",
    "Please remember to lock the door when you leave.",
    "We watched a long movie about the ocean last night.",
    "The train to the city leaves every twenty minutes.",
    "She bought fresh apples and bread at the market.",
    "Our teacher asked us to read three chapters.",
    "The dog ran across the field to catch the ball.",
    "I need to call my doctor tomorrow morning.",
    "They are building a new library near the river.",
    "He plays the guitar in a band on weekends.",
    "The meeting has been moved to Thursday afternoon.",
    "Turn left at the next corner and walk two blocks.",
    "My grandmother grows tomatoes in her garden.",
    "The museum is closed on Mondays.",
    "We should take an umbrella because it might rain.",
    "The restaurant serves the best soup in town.",
    "Students must finish their projects before Friday.",
    "A small bird was singing outside my window.",
    "The price of gas went up again this month.",
    "Could you please speak a little more slowly?",
    "The airport was crowded with holiday travelers.",
    "I forgot my keys at the office yesterday.",
    "The children built a snowman in the yard.",
    "Her sister lives in a quiet village by the sea.",
    "The bus was late because of heavy traffic.",
    "We planted flowers along the front path.",
    "Dinner will be ready in about half an hour.",
    "The old bridge was repaired last summer.",
    "He reads the newspaper every morning with his tea.",
    "Our neighbors adopted a black cat.",
    "My phone battery died during the concert.",
    "The nurse gave the patient a glass of water.",
    "We drove along the coast for three hours.",
    "The farmer sold eggs and honey at the fair.",
    "Please send me the report by the end of the day.",
    "The lights went out during the storm.",
    "They celebrated their anniversary in Paris.",
    "The kitten slept on the warm windowsill.",
    "Our flight was delayed by two hours.",
    "A strong wind knocked over the fence.",
    "My uncle repairs old clocks in his workshop.",
    "The soup needs a little more salt.",
    "She painted the kitchen a bright yellow.",
    "The mechanic fixed the brakes on my bicycle.",
    "Fresh snow covered the mountains this morning.",
    "The orchestra played a symphony by Mozart.",
];

/// Pauses between sentences, in seconds, used in turn.
const PAUSES: &[f64] = &[0.5, 1.2, 2.0, 3.0, 0.8, 1.6, 2.5];
const RATE: usize = 16_000;
/// Peak of the noise floor: about -58 dBFS, a quiet room through a cheap
/// microphone.
const NOISE_PEAK: f64 = 40.0;
/// Peak of the burst of loud noise inside the silent stretch (about
/// -24 dBFS: a door, a fan switched on).
const BURST_PEAK: f64 = 2000.0;
const BURST_SECONDS: f64 = 4.0;
/// A sample louder than this is speech, for finding where espeak-ng's
/// output really starts and ends.
const SPEECH_LEVEL: i16 = 300;

pub struct LongRecording {
    /// 16 kHz mono 16-bit WAV.
    pub wav: Vec<u8>,
    pub duration: f64,
    /// Start, end (seconds) and text of every sentence, in order.
    pub sentences: Vec<(f64, f64, &'static str)>,
    /// The stretch without speech (near-silence, and a burst of loud noise
    /// in its middle).
    pub silence: (f64, f64),
}

impl LongRecording {
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self.sentences.iter().map(|s| s.2).collect();
        texts.join(" ")
    }
}

/// All of `SENTENCES`, with `silence` seconds without speech after the
/// middle one: near-silence with a burst of loud noise in its middle.
pub fn recording(silence: f64) -> LongRecording {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut samples: Vec<i16> = Vec::new();
    let mut sentences = Vec::new();
    let mut silent_span = (0.0, 0.0);
    let push_quiet = |samples: &mut Vec<i16>, seconds: f64| {
        samples.resize(samples.len() + (seconds * RATE as f64) as usize, 0);
    };
    push_quiet(&mut samples, 1.0);
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let speech = pcm_16k(dir.path(), sentence);
        let start = samples.len() as f64 / RATE as f64;
        samples.extend_from_slice(trimmed(&speech));
        let end = samples.len() as f64 / RATE as f64;
        sentences.push((start, end, *sentence));
        if i + 1 == SENTENCES.len() / 2 {
            silent_span = (end, end + silence);
            let quiet = (silence - BURST_SECONDS) / 2.0;
            push_quiet(&mut samples, quiet);
            let burst = samples.len();
            push_quiet(&mut samples, BURST_SECONDS);
            add_noise(&mut samples[burst..], BURST_PEAK, 7);
            push_quiet(&mut samples, quiet);
        } else {
            push_quiet(&mut samples, PAUSES[i % PAUSES.len()]);
        }
    }
    add_noise(&mut samples, NOISE_PEAK, 1);
    LongRecording {
        duration: samples.len() as f64 / RATE as f64,
        wav: super::pcm16_wav(&samples, RATE as u32),
        sentences,
        silence: silent_span,
    }
}

/// `text` spoken by espeak-ng as 16 kHz mono samples.
fn pcm_16k(dir: &std::path::Path, text: &str) -> Vec<i16> {
    let source = speech::espeak_wav(dir, text);
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(&source)
        .args(["-ar", "16000", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg is installed (ops/stack.sh)");
    assert!(output.status.success(), "ffmpeg failed");
    output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The samples from the first loud one to the last.
fn trimmed(samples: &[i16]) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > SPEECH_LEVEL.unsigned_abs();
    let first = samples.iter().position(loud).unwrap_or(0);
    let last = samples.iter().rposition(loud).map_or(first, |i| i + 1);
    &samples[first..last]
}

/// A 16-bit WAV of `pcm16_wav`'s layout played `times` times in a row.
pub fn repeated(wav: &[u8], times: usize) -> Vec<u8> {
    let data = &wav[44..];
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect::<Vec<_>>()
        .repeat(times);
    super::pcm16_wav(&samples, RATE as u32)
}

/// Seconds of near-silence only: a room with nobody speaking.
pub fn silence_wav(seconds: f64) -> Vec<u8> {
    let mut samples = vec![0i16; (seconds * RATE as f64) as usize];
    add_noise(&mut samples, NOISE_PEAK, 3);
    super::pcm16_wav(&samples, RATE as u32)
}

/// Uniform noise up to `peak`, from a generator seeded with `seed` so that
/// every run hears the same recording.
fn add_noise(samples: &mut [i16], peak: f64, seed: u64) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for sample in samples {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        let noise = (unit * 2.0 - 1.0) * peak;
        *sample = (f64::from(*sample) + noise).clamp(-32768.0, 32767.0) as i16;
    }
}

/// The five-word runs that occur more than once in `text`.
pub fn repeated_runs(text: &str) -> Vec<String> {
    let words = super::wer::words(text);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for run in words.windows(5) {
        *seen.entry(run.join(" ")).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(run, _)| run)
        .collect()
}

#[test]
fn the_sentences_repeat_no_five_word_run() {
    assert!(repeated_runs(&SENTENCES.join(" ")).is_empty());
    assert_eq!(
        repeated_runs("a b c d e x a b c d e"),
        vec!["a b c d e".to_owned()]
    );
}
