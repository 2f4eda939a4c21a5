//! Audio probing (API side) and decoding to 16 kHz mono f32 (worker side).
//!
//! The container is recognised by its magic bytes, never by a file name or a
//! client's content type; symphonia then parses it. Durations are measured by
//! walking the packets rather than trusted from headers, so a truncated file
//! reports what it really holds.
//!
//! Every header value is hostile until checked: sample rates outside
//! [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and more than [`MAX_CHANNELS`]
//! channels are refused before any buffer is sized from them, and decoding
//! resamples as it goes, so memory grows with the audio's length at 16 kHz
//! (bounded by the caller's maximum), never with its length at the rate a
//! header claims.
//!
//! Longer than most files: probing and decoding share the container
//! handling and the hostile-input checks; a third of it is their tests.

use std::io::Cursor;

use bytes::Bytes;

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The sample rate Whisper models expect.
pub const TARGET_RATE: u32 = 16_000;

/// Accepted sample rates: telephone audio up to studio masters.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Accepted channel counts, up to 7.1 surround.
pub const MAX_CHANNELS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Mp3,
    Flac,
    Ogg,
}

impl Container {
    /// Recognises the container from the first bytes of the file.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some(Self::Wav),
            [b'f', b'L', b'a', b'C', ..] => Some(Self::Flac),
            [b'O', b'g', b'g', b'S', ..] => Some(Self::Ogg),
            [b'I', b'D', b'3', ..] => Some(Self::Mp3),
            [0xFF, b, ..] if b & 0xE0 == 0xE0 => Some(Self::Mp3),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mpeg",
            Self::Flac => "audio/flac",
            Self::Ogg => "audio/ogg",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Flac => "flac",
            Self::Ogg => "ogg",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("not a supported audio file: expected WAV, MP3, FLAC or Ogg Vorbis")]
    UnsupportedFormat,
    #[error("the audio could not be decoded: {0}")]
    Undecodable(String),
    #[error(
        "a sample rate of {0} Hz is outside the accepted {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz"
    )]
    UnsupportedSampleRate(u32),
    #[error("{0} channels; at most {MAX_CHANNELS} are accepted")]
    TooManyChannels(usize),
    #[error("the audio lasts longer than the maximum of {0} s")]
    TooLong(f64),
}

impl AudioError {
    /// The error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat => "unsupported_media_type",
            Self::Undecodable(_) => "invalid_audio",
            Self::UnsupportedSampleRate(_) => "unsupported_sample_rate",
            Self::TooManyChannels(_) => "too_many_channels",
            Self::TooLong(_) => "audio_too_long",
        }
    }
}

/// Refuses what no buffer should be sized from.
fn check_format(rate: u32, channels: usize) -> Result<(), AudioError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(AudioError::UnsupportedSampleRate(rate));
    }
    if channels > MAX_CHANNELS {
        return Err(AudioError::TooManyChannels(channels));
    }
    Ok(())
}

/// What the API learns about an upload before accepting it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub container: Container,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_seconds: f64,
}

struct Opened {
    container: Container,
    reader: Box<dyn FormatReader>,
    track_id: u32,
    codec_params: symphonia::core::codecs::CodecParameters,
}

fn open(bytes: Bytes) -> Result<Opened, AudioError> {
    let container = Container::sniff(&bytes).ok_or(AudioError::UnsupportedFormat)?;
    open_source(container, Box::new(Cursor::new(bytes)))
}

fn open_source(container: Container, source: Box<dyn MediaSource>) -> Result<Opened, AudioError> {
    let source = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension(container.extension());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| AudioError::Undecodable(e.to_string()))?;
    let reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Undecodable("no audio track".into()))?;
    Ok(Opened {
        container,
        track_id: track.id,
        codec_params: track.codec_params.clone(),
        reader,
    })
}

/// The next packet of the track, `None` at the end of the stream.
fn next_packet(
    reader: &mut dyn FormatReader,
    track_id: u32,
) -> Result<Option<symphonia::core::formats::Packet>, AudioError> {
    loop {
        match reader.next_packet() {
            Ok(p) if p.track_id() == track_id => return Ok(Some(p)),
            Ok(_) => {}
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None)
            }
            Err(SymphoniaError::ResetRequired) => return Ok(None),
            Err(e) => return Err(AudioError::Undecodable(e.to_string())),
        }
    }
}

/// Audio whose length is outside the accepted range.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LengthError {
    #[error("audio lasts {seconds:.3} s; the minimum is {min} s")]
    TooShort { seconds: f64, min: f64 },
    #[error("audio lasts {seconds:.0} s; the maximum is {max} s")]
    TooLong { seconds: f64, max: f64 },
}

impl LengthError {
    /// The error code clients see (`audio_too_short`, `audio_too_long`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "audio_too_short",
            Self::TooLong { .. } => "audio_too_long",
        }
    }
}

/// Checks a probed duration against the accepted range, the same for
/// uploads (at the API) and fetched audio (at the worker).
pub fn check_length(info: &AudioInfo, min: f64, max: f64) -> Result<(), LengthError> {
    let seconds = info.duration_seconds;
    if seconds < min {
        Err(LengthError::TooShort { seconds, min })
    } else if seconds > max {
        Err(LengthError::TooLong { seconds, max })
    } else {
        Ok(())
    }
}

/// Runs a parse of untrusted bytes, turning a panic in a demuxer or decoder
/// (symphonia panics on some malformed headers, e.g. a WAV rate of 0) into
/// a refusal of the file.
fn guarded<T>(parse: impl FnOnce() -> Result<T, AudioError>) -> Result<T, AudioError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| {
        Err(AudioError::Undecodable(
            "the file's structure is malformed".into(),
        ))
    })
}

/// Identifies the container and codec and measures the duration. The first
/// packets are decoded so that a file whose codec cannot be read is refused
/// at the door instead of failing later in a worker.
pub fn probe(bytes: Bytes) -> Result<AudioInfo, AudioError> {
    guarded(|| probe_opened(open(bytes)?))
}

/// [`probe`] for an upload spooled to a file: read through a small buffer,
/// never loaded whole.
pub fn probe_file(mut file: std::fs::File) -> Result<AudioInfo, AudioError> {
    use std::io::{Read, Seek};
    let mut head = Vec::with_capacity(12);
    file.rewind()
        .and_then(|()| (&mut file).take(12).read_to_end(&mut head))
        .and_then(|_| file.rewind())
        .map_err(|e| AudioError::Undecodable(e.to_string()))?;
    let container = Container::sniff(&head).ok_or(AudioError::UnsupportedFormat)?;
    guarded(|| probe_opened(open_source(container, Box::new(file))?))
}

fn probe_opened(opened: Opened) -> Result<AudioInfo, AudioError> {
    let Opened {
        container,
        mut reader,
        track_id,
        codec_params,
    } = opened;
    let sample_rate = codec_params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| AudioError::Undecodable("unknown sample rate".into()))?;
    check_format(sample_rate, codec_params.channels.map_or(1, |c| c.count()))?;
    let codec = symphonia::default::get_codecs()
        .get_codec(codec_params.codec)
        .map(|d| d.short_name.to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mut decoder = symphonia::default::get_codecs()
        .make(&codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Undecodable(e.to_string()))?;

    let mut frames: u64 = 0;
    let mut decoded_ok = 0usize;
    let mut channels = codec_params.channels.map(|c| c.count() as u16);
    while let Some(packet) = next_packet(reader.as_mut(), track_id)? {
        // Decoding every packet would cost as much as the worker's pass;
        // a handful proves the codec works.
        if decoded_ok < 4 {
            match decoder.decode(&packet) {
                Ok(buf) => {
                    check_format(buf.spec().rate, buf.spec().channels.count())?;
                    decoded_ok += 1;
                    channels.get_or_insert(buf.spec().channels.count() as u16);
                    frames += buf.frames() as u64;
                }
                Err(SymphoniaError::DecodeError(_)) => {}
                Err(e) => return Err(AudioError::Undecodable(e.to_string())),
            }
        } else {
            frames += packet.dur;
        }
    }
    if decoded_ok == 0 {
        return Err(AudioError::Undecodable("no decodable audio frames".into()));
    }
    Ok(AudioInfo {
        container,
        codec,
        sample_rate,
        channels: channels.unwrap_or(1),
        duration_seconds: frames as f64 / f64::from(sample_rate),
    })
}

/// Decodes the whole file, mixes it down to mono and resamples it to
/// [`TARGET_RATE`] with a band-limited (FFT) resampler, packet by packet.
/// Audio longer than `max_seconds` is refused as soon as decoding passes
/// that length.
pub fn decode_to_mono_16k(bytes: Bytes, max_seconds: f64) -> Result<Vec<f32>, AudioError> {
    guarded(|| decode_unguarded(bytes, max_seconds))
}

fn decode_unguarded(bytes: Bytes, max_seconds: f64) -> Result<Vec<f32>, AudioError> {
    let Opened {
        mut reader,
        track_id,
        codec_params,
        ..
    } = open(bytes)?;
    if let Some(rate) = codec_params.sample_rate {
        check_format(rate, codec_params.channels.map_or(1, |c| c.count()))?;
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Undecodable(e.to_string()))?;
    let mut output: Option<To16k> = None;
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    let mut mono: Vec<f32> = Vec::new();
    while let Some(packet) = next_packet(reader.as_mut(), track_id)? {
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped, as every player does.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(AudioError::Undecodable(e.to_string())),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        check_format(spec.rate, channels)?;
        let output = match &mut output {
            Some(out) if out.from != spec.rate => {
                return Err(AudioError::Undecodable(
                    "the sample rate changes within the file".into(),
                ))
            }
            Some(out) => out,
            None => output.insert(To16k::new(spec.rate, max_seconds)?),
        };
        let needed = decoded.capacity() as u64;
        let buf = match sample_buf.as_mut() {
            Some(buf) if buf.capacity() as u64 >= needed * channels as u64 => buf,
            _ => sample_buf.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.clear();
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        output.push(&mono)?;
    }
    match output {
        Some(output) if output.frames_in > 0 => output.finish(),
        _ => Err(AudioError::Undecodable("no decodable audio frames".into())),
    }
}

/// Resampling to [`TARGET_RATE`] as the samples arrive: only a chunk of
/// source-rate input is ever held.
struct To16k {
    from: u32,
    resampler: Option<FftFixedIn<f32>>,
    /// Input not yet resampled (less than one chunk after each push).
    pending: Vec<f32>,
    out: Vec<f32>,
    frames_in: u64,
    /// Most output frames accepted, the resampler's delay included.
    max_out: usize,
    max_seconds: f64,
}

/// Input frames per resampler call.
const CHUNK: usize = 1024;

fn resampling_error(e: &dyn std::fmt::Display) -> AudioError {
    AudioError::Undecodable(format!("resampling: {e}"))
}

impl To16k {
    fn new(from: u32, max_seconds: f64) -> Result<Self, AudioError> {
        let resampler = if from == TARGET_RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(from as usize, TARGET_RATE as usize, CHUNK, 2, 1)
                    .map_err(|e| resampling_error(&e))?,
            )
        };
        let delay = resampler.as_ref().map_or(0, |r| r.output_delay());
        let max_out = (max_seconds.max(0.0) * f64::from(TARGET_RATE)).min(usize::MAX as f64 / 2.0)
            as usize
            + delay;
        Ok(Self {
            from,
            resampler,
            pending: Vec::with_capacity(CHUNK * 2),
            out: Vec::new(),
            frames_in: 0,
            max_out,
            max_seconds,
        })
    }

    fn push(&mut self, mono: &[f32]) -> Result<(), AudioError> {
        self.frames_in += mono.len() as u64;
        let Some(resampler) = self.resampler.as_mut() else {
            self.out.extend_from_slice(mono);
            return self.check_length();
        };
        self.pending.extend_from_slice(mono);
        let mut used = 0;
        loop {
            let need = resampler.input_frames_next();
            if self.pending.len() - used < need {
                break;
            }
            let chunk = resampler
                .process(&[&self.pending[used..used + need]], None)
                .map_err(|e| resampling_error(&e))?;
            self.out.extend_from_slice(&chunk[0]);
            used += need;
        }
        self.pending.drain(..used);
        self.check_length()
    }

    fn check_length(&self) -> Result<(), AudioError> {
        if self.out.len() > self.max_out {
            return Err(AudioError::TooLong(self.max_seconds));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let expected = (self.frames_in * u64::from(TARGET_RATE) / u64::from(self.from)) as usize;
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(self.out);
        };
        let delay = resampler.output_delay();
        if !self.pending.is_empty() {
            let chunk = resampler
                .process_partial(Some(&[&self.pending[..]]), None)
                .map_err(|e| resampling_error(&e))?;
            self.out.extend_from_slice(&chunk[0]);
        }
        // Flush what the filter still holds until the delayed tail is out.
        while self.out.len() < expected + delay {
            let chunk = resampler
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| resampling_error(&e))?;
            if chunk[0].is_empty() {
                break;
            }
            self.out.extend_from_slice(&chunk[0]);
        }
        self.out.drain(..delay.min(self.out.len()));
        self.out.truncate(expected);
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_outside_the_range_are_refused_with_their_codes() {
        let info = |seconds| AudioInfo {
            container: Container::Wav,
            codec: "pcm_s16le".into(),
            sample_rate: 16_000,
            channels: 1,
            duration_seconds: seconds,
        };
        assert_eq!(check_length(&info(5.0), 0.1, 10.0), Ok(()));
        let short = check_length(&info(0.05), 0.1, 10.0).expect_err("short");
        assert_eq!(short.code(), "audio_too_short");
        assert_eq!(
            short.to_string(),
            "audio lasts 0.050 s; the minimum is 0.1 s"
        );
        let long = check_length(&info(12.4), 0.1, 10.0).expect_err("long");
        assert_eq!(long.code(), "audio_too_long");
        assert_eq!(long.to_string(), "audio lasts 12 s; the maximum is 10 s");
    }

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&rate.wrapping_mul(u32::from(channels) * 2).to_le_bytes());
        out.extend_from_slice(&channels.wrapping_mul(2).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    fn sine(rate: u32, freq: f32, seconds: f32) -> Vec<i16> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| {
                let t = i as f32 / rate as f32;
                ((2.0 * std::f32::consts::PI * freq * t).sin() * 12_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn sniffing_uses_magic_bytes_only() {
        assert_eq!(
            Container::sniff(b"RIFF\0\0\0\0WAVEfmt "),
            Some(Container::Wav)
        );
        assert_eq!(Container::sniff(b"fLaC\0"), Some(Container::Flac));
        assert_eq!(Container::sniff(b"OggS\0"), Some(Container::Ogg));
        assert_eq!(Container::sniff(b"ID3\x04"), Some(Container::Mp3));
        assert_eq!(Container::sniff(&[0xFF, 0xFB, 0x90]), Some(Container::Mp3));
        assert_eq!(Container::sniff(b"RIFF\0\0\0\0AVI "), None);
        assert_eq!(Container::sniff(b"<html>"), None);
        assert_eq!(Container::sniff(b""), None);
    }

    #[test]
    fn probe_measures_a_stereo_wav() {
        let mono = sine(44_100, 440.0, 1.5);
        let stereo: Vec<i16> = mono.iter().flat_map(|s| [*s, *s]).collect();
        let info = probe(wav(44_100, 2, &stereo).into()).expect("valid wav");
        assert_eq!(info.container, Container::Wav);
        assert_eq!(info.sample_rate, 44_100);
        assert_eq!(info.channels, 2);
        assert!((info.duration_seconds - 1.5).abs() < 0.01, "{info:?}");
    }

    #[test]
    fn random_bytes_are_refused() {
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        assert_eq!(probe(junk.into()), Err(AudioError::UnsupportedFormat));
        let mut fake = b"RIFF\0\0\0\0WAVE".to_vec();
        fake.extend(std::iter::repeat_n(7u8, 100));
        assert!(matches!(
            probe(fake.into()),
            Err(AudioError::Undecodable(_))
        ));
    }

    #[test]
    fn decoding_resamples_to_16k_and_keeps_the_tone() {
        let samples = sine(48_000, 1000.0, 1.0);
        let out = decode_to_mono_16k(wav(48_000, 1, &samples).into(), 60.0).expect("decodes");
        assert!((out.len() as i64 - 16_000).abs() <= 1, "{}", out.len());
        // A 1 kHz tone at 16 kHz crosses zero about 2000 times a second.
        let crossings = out
            .windows(2)
            .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
            .count();
        assert!((1900..=2100).contains(&crossings), "{crossings}");
        let peak = out[1000..15000].iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((0.3..0.4).contains(&peak), "{peak}");
    }

    /// A FLAC file of a STREAMINFO block and nothing else.
    fn flac_header(rate: u32, channels: u8) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        out.push(0x80); // last metadata block, STREAMINFO
        out.extend_from_slice(&[0, 0, 34]);
        out.extend_from_slice(&4096u16.to_be_bytes());
        out.extend_from_slice(&4096u16.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
        let packed = (u64::from(rate & 0xF_FFFF) << 44)
            | (u64::from(channels.saturating_sub(1) & 7) << 41)
            | (15u64 << 36)
            | 16_000;
        out.extend_from_slice(&packed.to_be_bytes());
        out.extend_from_slice(&[0; 16]);
        out
    }

    fn refused(result: Result<(), AudioError>) -> bool {
        matches!(
            result,
            Err(AudioError::UnsupportedSampleRate(_)
                | AudioError::TooManyChannels(_)
                | AudioError::Undecodable(_))
        )
    }

    #[test]
    fn hostile_rates_and_channel_counts_are_refused_before_any_buffer_is_sized() {
        let tone = sine(16_000, 440.0, 0.25);
        for rate in [
            0,
            1,
            4_000,
            7_999,
            192_001,
            1_000_000,
            999_999_999,
            u32::MAX,
        ] {
            let file = wav(rate, 1, &tone);
            assert!(
                refused(probe(file.clone().into()).map(|_| ())),
                "probe at {rate} Hz"
            );
            assert!(
                refused(decode_to_mono_16k(file.into(), 60.0).map(|_| ())),
                "decode at {rate} Hz"
            );
        }
        for rate in [999_999, 1_000_000] {
            let result = probe(flac_header(rate, 1).into()).map(|_| ());
            assert!(refused(result), "FLAC at {rate} Hz");
        }
        for channels in [9u16, 64, 255, 65_535] {
            let file = wav(16_000, channels, &tone);
            assert!(
                refused(probe(file.clone().into()).map(|_| ())),
                "{channels} channels"
            );
            assert!(refused(decode_to_mono_16k(file.into(), 60.0).map(|_| ())));
        }
        // The edges of the range are accepted.
        for rate in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] {
            let file = wav(rate, 2, &sine(rate, 440.0, 0.25));
            assert_eq!(probe(file.clone().into()).expect("probe").sample_rate, rate);
            let out = decode_to_mono_16k(file.into(), 60.0).expect("decode");
            assert!((out.len() as i64 - 2_000).abs() <= 2, "{}", out.len());
        }
        assert_eq!(
            check_format(16_000, MAX_CHANNELS + 1),
            Err(AudioError::TooManyChannels(MAX_CHANNELS + 1))
        );
    }

    #[test]
    fn lying_lengths_and_truncated_frames_report_what_the_file_holds() {
        let mut file = wav(16_000, 1, &sine(16_000, 440.0, 1.0));
        // The RIFF and data chunks claim a gigabyte: either refused, or
        // measured by what is there.
        let mut lying = file.clone();
        lying[4..8].copy_from_slice(&((1u32 << 30) + 36).to_le_bytes());
        let at = lying.len() - 16_000 * 2 - 4;
        lying[at..at + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        match probe(lying.clone().into()) {
            Ok(info) => {
                assert!((info.duration_seconds - 1.0).abs() < 0.1, "{info:?}");
                let out = decode_to_mono_16k(lying.into(), 60.0).expect("decode");
                assert!((out.len() as i64 - 16_000).abs() < 1_600, "{}", out.len());
            }
            Err(e) => assert!(matches!(e, AudioError::Undecodable(_)), "{e:?}"),
        }
        // Cut mid-frame.
        file.truncate(file.len() / 2 + 1);
        let info = probe(file.clone().into()).expect("probe");
        assert!(info.duration_seconds < 0.6, "{info:?}");
        decode_to_mono_16k(file.into(), 60.0).expect("decode");
    }

    #[test]
    fn decoding_stops_once_past_the_maximum_length() {
        let file = wav(48_000, 1, &sine(48_000, 440.0, 3.0));
        assert_eq!(
            decode_to_mono_16k(file.clone().into(), 1.0),
            Err(AudioError::TooLong(1.0))
        );
        let out = decode_to_mono_16k(file.into(), 3.5).expect("within the maximum");
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
    }

    /// Found by ops/fuzz.sh: a Vorbis comment in a FLAC file claiming 1.7 GB
    /// made the metadata reader allocate it before reading (fixed in the
    /// patched symphonia-metadata, third_party/). Refused, with no such
    /// allocation (the worker's address-space-limited test covers memory).
    #[test]
    fn a_metadata_length_claiming_gigabytes_is_refused() {
        let mut file = flac_header(16_000, 1);
        file[4] = 0; // STREAMINFO not last
        let mut comment = Vec::new();
        comment.extend_from_slice(&0u32.to_le_bytes());
        comment.extend_from_slice(&1u32.to_le_bytes());
        comment.extend_from_slice(&0x6500_0000u32.to_le_bytes());
        comment.extend_from_slice(b"TITLE=x");
        file.push(0x84); // VORBIS_COMMENT, last
        file.extend_from_slice(&(comment.len() as u32).to_be_bytes()[1..]);
        file.extend_from_slice(&comment);
        assert!(refused(probe(file.clone().into()).map(|_| ())));
        assert!(refused(decode_to_mono_16k(file.into(), 60.0).map(|_| ())));
    }

    #[test]
    fn mutated_files_are_refused_or_decoded_never_a_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x766f_7871);
        let seeds = [
            wav(44_100, 2, &sine(44_100, 440.0, 0.2)),
            wav(8_000, 1, &sine(8_000, 300.0, 0.2)),
            flac_header(48_000, 2),
        ];
        for round in 0..3_000 {
            let mut file = seeds[round % seeds.len()].clone();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..file.len());
                file[at] = rng.gen();
            }
            if rng.gen_bool(0.3) {
                file.truncate(rng.gen_range(1..=file.len()));
            }
            let _ = probe(file.clone().into());
            let _ = decode_to_mono_16k(file.into(), 5.0);
        }
    }
}
