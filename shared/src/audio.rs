//! Audio probing (API side) and decoding to 16 kHz mono f32 (worker side).
//!
//! The container is recognised by its magic bytes, never by a file name or a
//! client's content type; symphonia then parses it. Durations are measured by
//! walking the packets rather than trusted from headers, so a truncated file
//! reports what it really holds.

use std::io::Cursor;

use bytes::Bytes;

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The sample rate Whisper models expect.
pub const TARGET_RATE: u32 = 16_000;

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
    let source = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
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

/// Identifies the container and codec and measures the duration. The first
/// packets are decoded so that a file whose codec cannot be read is refused
/// at the door instead of failing later in a worker.
pub fn probe(bytes: Bytes) -> Result<AudioInfo, AudioError> {
    let Opened {
        container,
        mut reader,
        track_id,
        codec_params,
    } = open(bytes)?;
    let sample_rate = codec_params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| AudioError::Undecodable("unknown sample rate".into()))?;
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
/// [`TARGET_RATE`] with a band-limited (FFT) resampler.
pub fn decode_to_mono_16k(bytes: Bytes) -> Result<Vec<f32>, AudioError> {
    let Opened {
        mut reader,
        track_id,
        codec_params,
        ..
    } = open(bytes)?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Undecodable(e.to_string()))?;
    let mut mono: Vec<f32> = Vec::new();
    let mut rate = codec_params.sample_rate.unwrap_or(0);
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    while let Some(packet) = next_packet(reader.as_mut(), track_id)? {
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped, as every player does.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(AudioError::Undecodable(e.to_string())),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let buf = match sample_buf.as_mut() {
            Some(buf) if buf.capacity() as u64 >= needed * channels as u64 => buf,
            _ => sample_buf.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
    if mono.is_empty() || rate == 0 {
        return Err(AudioError::Undecodable("no decodable audio frames".into()));
    }
    resample(&mono, rate, TARGET_RATE)
}

fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| AudioError::Undecodable(format!("resampling: {e}"));
    let mut resampler =
        FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1).map_err(|e| err(&e))?;
    let expected = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(expected + delay + 2048);
    let mut pos = 0;
    loop {
        let need = resampler.input_frames_next();
        if pos + need > input.len() {
            break;
        }
        let chunk = resampler
            .process(&[&input[pos..pos + need]], None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&chunk[0]);
        pos += need;
    }
    if pos < input.len() {
        let chunk = resampler
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&chunk[0]);
    }
    // Flush what the filter still holds until the delayed tail is out.
    while out.len() < expected + delay {
        let chunk = resampler
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| err(&e))?;
        if chunk[0].is_empty() {
            break;
        }
        out.extend_from_slice(&chunk[0]);
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
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
        out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        out.extend_from_slice(&(channels * 2).to_le_bytes());
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
        let out = decode_to_mono_16k(wav(48_000, 1, &samples).into()).expect("decodes");
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
}
