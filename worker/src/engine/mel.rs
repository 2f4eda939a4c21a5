//! Whisper's log-mel spectrogram, computed the way the reference does:
//! 400-point periodic Hann window, hop 160, centred STFT with reflect
//! padding, power spectrum, Slaney-normalised mel filters, log10 clamped to
//! 8 decades below the loudest value and scaled to roughly [-1, 1].
//! Features that differ from the reference cost accuracy (punctuation and
//! casing are the first to go), so this matches faster-whisper's extractor.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const SAMPLE_RATE: usize = 16_000;
/// Frames in one 30-second window.
pub const CHUNK_FRAMES: usize = 3000;

pub struct MelExtractor {
    n_mels: usize,
    filters: Vec<f32>,
    /// Each filter's non-zero bins: the filters are triangles a few bins
    /// wide, so summing over all bins is mostly multiplying by zero.
    nonzero: Vec<(usize, usize)>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

/// Log-mel features, row-major `[n_mels][frames]`.
pub struct Features {
    pub n_mels: usize,
    pub frames: usize,
    pub data: Vec<f32>,
}

impl Features {
    /// A `[n_mels, CHUNK_FRAMES]` window starting at `start`, zero-padded
    /// past the end, as the encoder expects.
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.n_mels * CHUNK_FRAMES];
        let len = len.min(CHUNK_FRAMES).min(self.frames.saturating_sub(start));
        for m in 0..self.n_mels {
            let row = &self.data[m * self.frames + start..m * self.frames + start + len];
            out[m * CHUNK_FRAMES..m * CHUNK_FRAMES + len].copy_from_slice(row);
        }
        out
    }
}

impl MelExtractor {
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let filters = mel_filters(SAMPLE_RATE as f64, N_FFT, n_mels);
        let bins = N_FFT / 2 + 1;
        let nonzero = filters
            .chunks(bins)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(0, |l| l + 1);
                (first, last.max(first))
            })
            .collect();
        Self {
            n_mels,
            filters,
            nonzero,
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    pub fn compute(&self, audio: &[f32]) -> Features {
        // The reference appends one hop of silence before the STFT.
        let mut padded = Vec::with_capacity(audio.len() + HOP + N_FFT);
        let signal: Vec<f32> = audio
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0.0, HOP))
            .collect();
        let half = N_FFT / 2;
        // Reflect padding (without repeating the edge sample), as numpy's
        // `np.pad(mode="reflect")`.
        padded.extend((1..=half).rev().map(|i| reflect(&signal, i as isize)));
        padded.extend_from_slice(&signal);
        let n = signal.len() as isize;
        padded.extend((0..half).map(|i| reflect(&signal, n - 2 - i as isize)));

        let total_frames = 1 + (padded.len() - N_FFT) / HOP;
        // The last STFT frame is dropped, as the reference does.
        let frames = total_frames.saturating_sub(1);
        let bins = N_FFT / 2 + 1;
        let mut power = vec![0f32; bins];
        let mut buf = vec![Complex::new(0f32, 0f32); N_FFT];
        let mut scratch = vec![Complex::new(0f32, 0f32); self.fft.get_inplace_scratch_len()];
        let mut mel = vec![0f32; self.n_mels * frames];
        for f in 0..frames {
            let start = f * HOP;
            for (i, slot) in buf.iter_mut().enumerate() {
                *slot = Complex::new(padded[start + i] * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf[..bins]) {
                *p = c.norm_sqr();
            }
            for (m, &(first, last)) in self.nonzero.iter().enumerate() {
                let filter = &self.filters[m * bins + first..m * bins + last];
                let energy: f32 = filter
                    .iter()
                    .zip(&power[first..last])
                    .map(|(w, p)| w * p)
                    .sum();
                mel[m * frames + f] = energy.max(1e-10).log10();
            }
        }
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut mel {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        Features {
            n_mels: self.n_mels,
            frames,
            data: mel,
        }
    }
}

fn reflect(signal: &[f32], i: isize) -> f32 {
    let n = signal.len() as isize;
    if n == 1 {
        return signal[0];
    }
    let period = 2 * (n - 1);
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - j;
    }
    signal[j as usize]
}

/// Slaney-style mel filter bank (librosa's default), `[n_mels][bins]`.
fn mel_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * sr / n_fft as f64).collect();
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let log_step = (6.4f64).ln() / 27.0;
    let mel_to_hz = |mel: f64| {
        if mel >= min_log_mel {
            min_log_hz * (log_step * (mel - min_log_mel)).exp()
        } else {
            f_sp * mel
        }
    };
    let hz_to_mel = |hz: f64| {
        if hz >= min_log_hz {
            min_log_mel + (hz / min_log_hz).ln() / log_step
        } else {
            hz / f_sp
        }
    };
    let max_mel = hz_to_mel(sr / 2.0);
    let freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (lo, center, hi) = (freqs[m], freqs[m + 1], freqs[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (center - lo);
            let upper = (hi - f) / (hi - center);
            weights[m * bins + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_the_reference() {
        let extractor = MelExtractor::new(80);
        let features = extractor.compute(&vec![0.0; 16_000]);
        // 1 s + one hop of padding → 101 frames after dropping the last.
        assert_eq!(features.frames, 101);
        assert_eq!(features.data.len(), 80 * 101);
    }

    #[test]
    fn a_tone_lights_up_the_matching_mel_band() {
        let audio: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let features = MelExtractor::new(80).compute(&audio);
        let frame = 50;
        let column: Vec<f32> = (0..80)
            .map(|m| features.data[m * features.frames + frame])
            .collect();
        let loudest = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(m, _)| m)
            .unwrap_or(0);
        // 1 kHz is mel 15 on the Slaney scale; 80 bands span mel 0..45.25 in
        // steps of 45.25 / 81, so band ≈ 15 / 0.5586 - 1 ≈ 25.9.
        assert!((25..=27).contains(&loudest), "loudest band {loudest}");
        assert!(column.iter().all(|v| (-1.5..=1.5).contains(v)));
    }

    #[test]
    fn filters_match_librosa_spot_values() {
        let f = mel_filters(16_000.0, 400, 80);
        // Each filter is a triangle; the bank covers 0..8 kHz with no gaps.
        let bins = 201;
        for k in 1..bins - 1 {
            let col: f32 = (0..80).map(|m| f[m * bins + k]).sum();
            assert!(col > 0.0, "bin {k} uncovered");
        }
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)[0, 1] ≈ 0.02486
        assert!((f[1] - 0.024_86).abs() < 1e-4, "{}", f[1]);
    }
}
