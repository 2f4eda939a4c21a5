//! Voice activity detection: Silero VAD (a trained model, run by
//! whisper.cpp's ggml runtime) finds the speech in a recording, and the
//! speech is cut into chunks of at most one Whisper window, so that no
//! Whisper call is spent on silence, music or noise, and a long job's
//! chunks can be decoded as one batch.
//!
//! Longer than most files (a sixth of it tests): detecting, chunking and
//! placing are one round trip on one timeline. `detect` finds the spans,
//! `plan` cuts them into chunks, and `place` brings each chunk's segments
//! back to the original times through the same chunk and spans; the
//! padding and join rules on both sides must agree.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use anyhow::anyhow;
use voxq_shared::job::{Segment, SpeechSpan, VadParams};
use whisper_rs::{WhisperVadContext, WhisperVadContextParams, WhisperVadParams};

use super::mel::SAMPLE_RATE;
use super::round_ms;

/// The longest chunk, in seconds: one Whisper window.
const CHUNK_SECONDS: f64 = 30.0;
/// Seconds of a speech span a segment must hold for its edges to move
/// onto that span.
const MIN_OVERLAP: f64 = 0.25;
/// Seconds of a segment on one side of a join below which that side is
/// taken for padding.
const MAX_PAD_ACROSS_JOIN: f64 = 1.0;

/// Silero VAD, with a pool of contexts so that lanes detect in parallel.
pub struct Vad {
    path: String,
    contexts: Mutex<Vec<WhisperVadContext>>,
}

impl Vad {
    /// Loads the ggml Silero model at `path` (`ops/fetch-models.sh` makes
    /// it from the `silero-vad` wheel), failing now rather than at the
    /// first job if it does not load.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let path = path
            .to_str()
            .filter(|p| !p.contains('\0'))
            .ok_or_else(|| anyhow!("VAD model path {} is not valid UTF-8", path.display()))?
            .to_owned();
        anyhow::ensure!(
            Path::new(&path).is_file(),
            "VAD model {path} does not exist (ops/fetch-models.sh makes models/silero-vad.bin)"
        );
        let vad = Self {
            path,
            contexts: Mutex::new(Vec::new()),
        };
        let context = vad.context()?;
        vad.give_back(context);
        Ok(vad)
    }

    fn context(&self) -> anyhow::Result<WhisperVadContext> {
        let pooled = self.contexts.lock().ok().and_then(|mut pool| pool.pop());
        if let Some(context) = pooled {
            return Ok(context);
        }
        let mut params = WhisperVadContextParams::new();
        // The model is tiny: one thread per call, lanes run in parallel.
        params.set_n_threads(1);
        params.set_use_gpu(false);
        WhisperVadContext::new(&self.path, params)
            .map_err(|e| anyhow!("loading the VAD model {}: {e:?}", self.path))
    }

    fn give_back(&self, context: WhisperVadContext) {
        if let Ok(mut pool) = self.contexts.lock() {
            pool.push(context);
        }
    }

    /// The spans of `audio` (16 kHz mono) that hold speech, unpadded, in
    /// seconds, in order. A long recording is cut at quiet points into one
    /// part per core, detected side by side: the model runs on one thread.
    pub fn speech(&self, audio: &[f32], params: &VadParams) -> anyhow::Result<Vec<SpeechSpan>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts = (audio.len() / (MIN_PART_SECONDS * SAMPLE_RATE)).clamp(1, cores);
        let cuts = quiet_cuts(audio, parts);
        let found: Vec<anyhow::Result<Vec<SpeechSpan>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = cuts
                .windows(2)
                .map(|w| scope.spawn(move || self.part_speech(&audio[w[0]..w[1]], params)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("voice activity detection panicked")))
                })
                .collect()
        });
        let mut spans: Vec<SpeechSpan> = Vec::new();
        let max_span = CHUNK_SECONDS - 2.0 * params.speech_pad_seconds();
        let min_gap = f64::from(params.min_silence_ms()) / 1000.0;
        for (part, &cut) in found.into_iter().zip(&cuts) {
            let offset = cut as f64 / SAMPLE_RATE as f64;
            for span in part? {
                let span = SpeechSpan {
                    start: round_ms(span.start + offset),
                    end: round_ms(span.end + offset),
                };
                // Speech cut in two at a part's edge is one span again.
                match spans.last_mut() {
                    Some(last)
                        if span.start - last.end < min_gap && span.end - last.start <= max_span =>
                    {
                        last.end = span.end;
                    }
                    _ => spans.push(span),
                }
            }
        }
        Ok(spans)
    }

    fn part_speech(&self, audio: &[f32], params: &VadParams) -> anyhow::Result<Vec<SpeechSpan>> {
        let duration = audio.len() as f64 / SAMPLE_RATE as f64;
        if audio.is_empty() {
            return Ok(Vec::new());
        }
        let mut vad = WhisperVadParams::new();
        vad.set_threshold(params.threshold());
        vad.set_min_speech_duration(params.min_speech_ms() as i32);
        vad.set_min_silence_duration(params.min_silence_ms() as i32);
        // Padding is added here (`chunks`), so that the spans reported and
        // used to place segments are where speech really is. Speech longer
        // than a window is split at its quietest point by the detector.
        vad.set_speech_pad(0);
        vad.set_max_speech_duration(
            CHUNK_SECONDS as f32 - 2.0 * params.speech_pad_seconds() as f32,
        );
        let mut context = self.context()?;
        let segments = context.segments_from_samples(vad, audio);
        self.give_back(context);
        let segments = segments.map_err(|e| anyhow!("voice activity detection failed: {e:?}"))?;
        // whisper.cpp reports centiseconds.
        let spans = segments
            .map(|s| SpeechSpan {
                start: (f64::from(s.start) / 100.0).clamp(0.0, duration),
                end: (f64::from(s.end) / 100.0).clamp(0.0, duration),
            })
            .filter(|s| s.end > s.start)
            .collect();
        Ok(spans)
    }
}

/// Parts shorter than this are not detected on a core of their own.
const MIN_PART_SECONDS: usize = 60;
/// Samples per Silero frame at 16 kHz.
const VAD_FRAME: usize = 512;
/// How far from an even cut the quietest point is looked for.
const CUT_SEARCH_SECONDS: usize = 10;
/// The block (96 ms) whose loudness is measured when looking for a quiet cut.
const CUT_BLOCK: usize = VAD_FRAME * 3;

/// Where `audio` is cut into `parts` parts (the first cut 0, the last its
/// length): near the even cuts, at the start of the quietest 96 ms block,
/// so that a cut falls in a pause, not in a word.
fn quiet_cuts(audio: &[f32], parts: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for k in 1..parts {
        let even = audio.len() * k / parts;
        let from = even
            .saturating_sub(CUT_SEARCH_SECONDS * SAMPLE_RATE)
            .max(cuts[cuts.len() - 1] + CUT_BLOCK);
        let to =
            (even + CUT_SEARCH_SECONDS * SAMPLE_RATE).min(audio.len().saturating_sub(CUT_BLOCK));
        let energy = |start: usize| {
            audio[start..start + CUT_BLOCK]
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
        };
        let quietest = (from..to)
            .step_by(CUT_BLOCK / 4)
            .map(|start| (energy(start), start))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(even, |(_, start)| start);
        // On the detector's frame grid, so that the frames of a part are
        // those of one pass over the whole.
        cuts.push(quietest - quietest % VAD_FRAME);
    }
    cuts.push(audio.len());
    cuts
}

/// A stretch of the original audio, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
}

/// Pieces of the original audio joined into one clip for Whisper, and the
/// way back from the clip's times to the original ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub pieces: Vec<Piece>,
}

impl Chunk {
    /// The whole recording as one chunk (detection off).
    pub fn whole(samples: usize) -> Self {
        Self {
            pieces: vec![Piece {
                start: 0,
                end: samples,
            }],
        }
    }

    pub fn samples(&self) -> usize {
        self.pieces.iter().map(|p| p.end - p.start).sum()
    }

    pub fn seconds(&self) -> f64 {
        self.samples() as f64 / SAMPLE_RATE as f64
    }

    /// The chunk's audio: its pieces one after another (a single piece,
    /// such as the whole clip, is not copied).
    pub fn audio<'a>(&self, audio: &'a [f32]) -> Cow<'a, [f32]> {
        let piece = |p: &Piece| &audio[p.start.min(audio.len())..p.end.min(audio.len())];
        match self.pieces.as_slice() {
            [one] => Cow::Borrowed(piece(one)),
            pieces => Cow::Owned(pieces.iter().flat_map(piece).copied().collect()),
        }
    }

    /// Where in the original recording a time of the chunk's clip falls.
    pub fn original_time(&self, seconds: f64) -> f64 {
        let rate = SAMPLE_RATE as f64;
        let mut clip_start = 0.0;
        let mut last_end = 0.0;
        for piece in &self.pieces {
            let length = (piece.end - piece.start) as f64 / rate;
            if seconds < clip_start + length {
                return piece.start as f64 / rate + (seconds - clip_start).max(0.0);
            }
            clip_start += length;
            last_end = piece.end as f64 / rate;
        }
        last_end
    }

    /// A stretch of the clip on the original timeline. A stretch across a
    /// join whose part on one side is short starts (or ends) on the other
    /// side: that part is padding, and keeping it would stretch the
    /// segment over the silence that was left out.
    pub fn original_span(&self, start: f64, end: f64) -> (f64, f64) {
        let rate = SAMPLE_RATE as f64;
        let mut clip_start = 0.0;
        let mut joins = Vec::new();
        for piece in &self.pieces {
            clip_start += (piece.end - piece.start) as f64 / rate;
            joins.push(clip_start);
        }
        joins.pop();
        let (mut start, mut end) = (start, end.max(start));
        if let Some(&join) = joins.iter().find(|&&j| start < j && end > j) {
            if join - start < MAX_PAD_ACROSS_JOIN {
                start = join;
            }
        }
        if let Some(&join) = joins.iter().rev().find(|&&j| start < j && end > j) {
            if end - join < MAX_PAD_ACROSS_JOIN {
                end = join;
            }
        }
        // Exactly at a join means the start of the next piece.
        let end_time = self
            .original_time(end - 1e-6)
            .max(self.original_time(start));
        (self.original_time(start), end_time)
    }

    /// Start of the chunk in the original recording, in seconds.
    pub fn start(&self) -> f64 {
        self.pieces
            .first()
            .map_or(0.0, |p| p.start as f64 / SAMPLE_RATE as f64)
    }
}

/// Speech spans padded by `pad` seconds each side (a gap shorter than two
/// pads is split in its middle), then joined in order into chunks of at
/// most one window. Long silences between spans are left out of the
/// chunks, as faster-whisper's VAD filter does.
pub fn chunks(speech: &[SpeechSpan], pad: f64, samples: usize) -> Vec<Chunk> {
    let rate = SAMPLE_RATE as f64;
    let duration = samples as f64 / rate;
    let mut padded: Vec<(f64, f64)> = Vec::with_capacity(speech.len());
    for (i, span) in speech.iter().enumerate() {
        let before = match i.checked_sub(1).map(|p| speech[p].end) {
            Some(previous_end) => pad.min((span.start - previous_end).max(0.0) / 2.0),
            None => pad,
        };
        let after = match speech.get(i + 1) {
            Some(next) => pad.min((next.start - span.end).max(0.0) / 2.0),
            None => pad,
        };
        padded.push((
            (span.start - before).max(0.0),
            (span.end + after).min(duration),
        ));
    }
    let max_samples = (CHUNK_SECONDS * rate) as usize;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current = Chunk { pieces: Vec::new() };
    for (start, end) in padded {
        let piece = Piece {
            start: (start * rate).round() as usize,
            end: ((end * rate).round() as usize).min(samples),
        };
        if piece.end <= piece.start {
            continue;
        }
        if !current.pieces.is_empty() && current.samples() + (piece.end - piece.start) > max_samples
        {
            chunks.push(std::mem::replace(
                &mut current,
                Chunk { pieces: Vec::new() },
            ));
        }
        // Adjacent pieces (a split gap) stay one piece.
        match current.pieces.last_mut() {
            Some(last) if last.end >= piece.start => last.end = piece.end,
            _ => current.pieces.push(piece),
        }
    }
    if !current.pieces.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Moves a segment's edges in from the silence around it onto the speech
/// it holds: Whisper's timestamps tend to start a segment where the
/// previous one ended, pause included. Spans the segment only grazes (the
/// tail of the previous sentence, under a third of it) do not count.
pub fn fit_to_speech(start: f64, end: f64, speech: &[SpeechSpan]) -> (f64, f64) {
    let overlap = |s: &SpeechSpan| s.end.min(end) - s.start.max(start);
    let held = |s: &&SpeechSpan| {
        let length = s.end - s.start;
        overlap(s) >= MIN_OVERLAP.max(length / 3.0).min(length)
    };
    match (speech.iter().find(held), speech.iter().rev().find(held)) {
        (Some(first), Some(last)) => {
            let fitted = (start.max(first.start), end.min(last.end));
            if fitted.1 > fitted.0 {
                fitted
            } else {
                (start, end)
            }
        }
        _ => (start, end),
    }
}

/// A job asked for `vad` on a worker without the model: permanent.
#[derive(Debug, thiserror::Error)]
#[error("the job asks for `vad`, and this worker has no voice activity detection model (VOXQ_VAD_MODEL)")]
pub struct NoVadModel;

/// What voice activity detection found in a clip: Whisper hears only
/// these spans, each padded by `pad` seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Speech {
    pub spans: Vec<SpeechSpan>,
    pub pad: f64,
}

/// Runs detection on a clip when its job wants it: asked for, or not
/// asked about and longer than `auto_above` seconds on a worker that has
/// the model. `Ok(None)`: the whole clip goes to Whisper.
pub fn detect(
    vad: Option<&Vad>,
    audio: &[f32],
    params: &VadParams,
    auto_above: f64,
) -> anyhow::Result<Option<Speech>> {
    let seconds = audio.len() as f64 / SAMPLE_RATE as f64;
    let vad = match (params.enabled, vad) {
        (Some(false), _) | (None, None) => return Ok(None),
        (None, Some(_)) if seconds <= auto_above => return Ok(None),
        (Some(true), None) => return Err(NoVadModel.into()),
        (_, Some(vad)) => vad,
    };
    Ok(Some(Speech {
        spans: vad.speech(audio, params)?,
        pad: params.speech_pad_seconds(),
    }))
}

/// The clips Whisper decodes for one recording: its speech in chunks, or
/// the whole of it when detection did not run.
pub fn plan(speech: Option<&Speech>, samples: usize) -> Vec<Chunk> {
    match speech {
        Some(speech) => chunks(&speech.spans, speech.pad, samples),
        None => vec![Chunk::whole(samples)],
    }
}

/// Moves a segment decoded from `chunk` to the original timeline, words
/// included, and fits its edges to the speech found inside it.
pub fn place(segment: &mut Segment, chunk: &Chunk, speech: Option<&Speech>) {
    let (start, end) = chunk.original_span(segment.start, segment.end);
    let (start, end) = match speech {
        Some(speech) => fit_to_speech(start, end, &speech.spans),
        None => (start, end),
    };
    segment.start = round_ms(start);
    segment.end = round_ms(end);
    for word in &mut segment.words {
        word.start = round_ms(chunk.original_time(word.start));
        word.end = round_ms(chunk.original_time(word.end).max(word.start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: f64, end: f64) -> SpeechSpan {
        SpeechSpan { start, end }
    }

    #[test]
    fn pads_split_short_gaps_and_long_silences_are_left_out() {
        let rate = SAMPLE_RATE as f64;
        let samples = (100.0 * rate) as usize;
        let speech = [span(1.0, 3.0), span(3.4, 5.0), span(50.0, 52.0)];
        let chunks = chunks(&speech, 0.4, samples);
        assert_eq!(chunks.len(), 1, "{chunks:?}");
        let pieces: Vec<(f64, f64)> = chunks[0]
            .pieces
            .iter()
            .map(|p| (p.start as f64 / rate, p.end as f64 / rate))
            .collect();
        // The 0.4 s gap is split in the middle and joins the first two.
        assert_eq!(pieces, vec![(0.6, 5.4), (49.6, 52.4)]);
        // 4.8 s of the first piece, then the second piece's start.
        assert!((chunks[0].original_time(1.0) - 1.6).abs() < 1e-9);
        assert!((chunks[0].original_time(4.8) - 49.6).abs() < 1e-9);
        assert!((chunks[0].original_time(1000.0) - 52.4).abs() < 1e-9);
        // Across the join: a short head (0.5 s) is padding, a long one not.
        let (start, end) = chunks[0].original_span(4.3, 6.0);
        assert!(
            (start - 49.6).abs() < 1e-9 && (end - 50.8).abs() < 1e-6,
            "{start} {end}"
        );
        let (start, end) = chunks[0].original_span(2.0, 6.0);
        assert!(
            (start - 2.6).abs() < 1e-9 && (end - 50.8).abs() < 1e-6,
            "{start} {end}"
        );
    }

    #[test]
    fn long_audio_is_cut_in_a_pause_on_the_detector_grid() {
        let rate = SAMPLE_RATE;
        // 150 s of a loud tone with a 0.5 s pause at 71 s: the even cut
        // (75 s) moves into the pause.
        let mut audio: Vec<f32> = (0..150 * rate).map(|i| (i as f32 * 0.05).sin()).collect();
        audio[71 * rate..71 * rate + rate / 2].fill(0.0);
        let cuts = quiet_cuts(&audio, 2);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        assert_eq!((cuts[0], cuts[2]), (0, audio.len()));
        assert_eq!(cuts[1] % VAD_FRAME, 0);
        let seconds = cuts[1] as f64 / rate as f64;
        assert!((71.0 - 0.04..71.5).contains(&seconds), "{seconds}");
        assert_eq!(quiet_cuts(&audio, 1), vec![0, audio.len()]);
    }

    #[test]
    fn chunks_hold_at_most_one_window() {
        let rate = SAMPLE_RATE as f64;
        let speech: Vec<SpeechSpan> = (0..20)
            .map(|i| span(f64::from(i) * 6.0 + 1.0, f64::from(i) * 6.0 + 5.0))
            .collect();
        let chunks = chunks(&speech, 0.4, (130.0 * rate) as usize);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for chunk in &chunks {
            assert!(chunk.samples() as f64 <= CHUNK_SECONDS * rate);
        }
        let total: usize = chunks.iter().map(Chunk::samples).sum();
        assert_eq!(total as f64 / rate, 20.0 * 4.8);
    }

    #[test]
    fn no_speech_no_chunks_and_segments_fit_to_the_speech_inside() {
        assert!(chunks(&[], 0.4, 16_000 * 60).is_empty());
        let speech = [span(10.0, 12.0), span(13.0, 15.5)];
        assert_eq!(fit_to_speech(8.0, 16.0, &speech), (10.0, 15.5));
        assert_eq!(fit_to_speech(11.0, 14.0, &speech), (11.0, 14.0));
        // The previous sentence's last 0.1 s is not this segment's start.
        assert_eq!(fit_to_speech(11.9, 16.0, &speech), (13.0, 15.5));
        // No speech inside: Whisper's own times stay.
        assert_eq!(fit_to_speech(20.0, 22.0, &speech), (20.0, 22.0));
    }
}
