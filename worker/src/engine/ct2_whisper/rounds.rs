//! How a call's windows go through the model: in rounds, one window of
//! each active stream per round, in batches spread over the model's
//! replicas, with stop requests honoured and progress reported per batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::super::mel::{Features, HOP, SAMPLE_RATE};
use super::super::vad::Chunk;
use super::super::{Stopped, Task, TranscribeOptions};
use super::{Ct2Whisper, Stream};
use crate::config::{DeviceArg, ModelSpec};

/// Windows decoded in one call at most, unless the model's `batch_size`
/// says more: a long job's speech chunks fill the batch, as in
/// faster-whisper's batched pipeline, and one call's memory stays bounded
/// however long the job.
pub(super) const MAX_WINDOWS_PER_CALL: usize = 8;

/// Calls of one job's windows made side by side on a CPU: as many as the
/// cores hold at the model's threads per call, each on a replica of its
/// own. Whisper's decoder barely gains from a second thread (tiny.en's
/// beam search took 1.80 s on one thread and 1.73 s on two), so two
/// one-thread calls at once do twice its work where one two-thread call
/// does it once.
pub(super) fn parallel_calls(spec: &ModelSpec) -> usize {
    match spec.device {
        DeviceArg::Cpu => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / spec.threads().max(1)).max(1)
        }
        DeviceArg::Cuda => 1,
    }
}

impl Ct2Whisper {
    /// The batches of the next round, one window of each active stream:
    /// windows whose prompts share a layout and whose first temperature is
    /// the same, `windows_per_call` at most. A clip whose language is not
    /// known yet sends only its first windows, in one batch, so that they
    /// settle one language for the whole clip.
    pub(super) fn plan_round(&self, streams: &mut [Mutex<Stream>]) -> Vec<Vec<usize>> {
        let mut detecting: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut groups: BTreeMap<(usize, Task, u32), Vec<usize>> = BTreeMap::new();
        for (i, stream) in streams.iter_mut().enumerate() {
            let stream = stream.get_mut().unwrap_or_else(PoisonError::into_inner);
            if !stream.active() {
                continue;
            }
            if stream.language.is_none() {
                let first = detecting.entry(stream.clip).or_default();
                if first.len() < self.windows_per_call {
                    first.push(i);
                }
                continue;
            }
            let layout = (
                stream.previous().len(),
                stream.task,
                stream.temperature.to_bits(),
            );
            groups.entry(layout).or_default().push(i);
        }
        let batches = groups.into_values().flat_map(|group| {
            let size = batch_size(group.len(), self.windows_per_call, self.parallel);
            group
                .chunks(size)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        });
        detecting.into_values().chain(batches).collect()
    }

    /// Decodes one round's batches, `parallel` calls at a time (each on its
    /// own model replica), honouring stop requests before each call and
    /// reporting progress after it.
    pub(super) fn run_round(
        &self,
        streams: &[Mutex<Stream>],
        batches: Vec<Vec<usize>>,
        options: &[TranscribeOptions],
        progress: &Progress,
    ) {
        let callers = self.parallel.min(batches.len()).max(1);
        let queue = Mutex::new(batches.into_iter());
        let next = || queue.lock().ok().and_then(|mut q| q.next());
        let decode = |batch: Vec<usize>| {
            let mut guards: Vec<MutexGuard<Stream>> = batch
                .iter()
                .map(|&i| streams[i].lock().unwrap_or_else(PoisonError::into_inner))
                .collect();
            for stream in guards.iter_mut().filter(|s| s.active()) {
                let control = options.get(stream.clip).and_then(|o| o.control.as_ref());
                if control.is_some_and(|c| c.stopped()) {
                    stream.error = Some(Stopped.into());
                }
            }
            let mut group: Vec<&mut Stream> = guards
                .iter_mut()
                .map(|g| &mut **g)
                .filter(|s| s.active())
                .collect();
            if !group.is_empty() {
                self.decode_or_isolate(&mut group);
            }
            progress.advance(&batch, &guards, options);
        };
        std::thread::scope(|scope| {
            for _ in 0..callers {
                scope.spawn(|| {
                    while let Some(batch) = next() {
                        decode(batch);
                    }
                });
            }
        });
    }

    /// The chunks' features, computed `parallel` at a time.
    pub(super) fn features(&self, audio: &[&[f32]], planned: &[(usize, Chunk)]) -> Vec<Features> {
        let per_thread = planned.len().div_ceil(self.parallel).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = planned
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(clip, chunk)| self.mel.compute(&chunk.audio(audio[*clip])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// Decodes a group; when that fails, each of its windows alone, so that
    /// one clip's failure stays its own.
    fn decode_or_isolate(&self, group: &mut [&mut Stream]) {
        let Err(e) = self.decode_group(group) else {
            return;
        };
        if let [stream] = group {
            stream.error = Some(e);
            return;
        }
        for stream in group.iter_mut() {
            if let Err(e) = self.decode_group(std::slice::from_mut(stream)) {
                stream.error = Some(e);
            }
        }
    }
}

/// How many of a group's `windows` go in one call: as few calls as
/// `per_call` allows, in a multiple of the `parallel` callers, evenly
/// filled, so that the callers finish together. Batching pays on a CPU
/// too: tiny.en on one thread took 0.42 s per window to encode and beam
/// search three windows at once, against 0.65 s one by one.
fn batch_size(windows: usize, per_call: usize, parallel: usize) -> usize {
    let calls = windows.div_ceil(per_call.max(1)).div_ceil(parallel.max(1)) * parallel.max(1);
    windows.div_ceil(calls.clamp(1, windows.max(1))).max(1)
}

/// After a round: a clip's streams that have no language yet take the most
/// certain one its other streams detected.
pub(super) fn share_languages(streams: &mut [Mutex<Stream>]) {
    let mut streams: Vec<&mut Stream> = streams
        .iter_mut()
        .map(|s| s.get_mut().unwrap_or_else(PoisonError::into_inner))
        .collect();
    settle_languages(&mut streams);
}

/// One language per clip: the most certain of those its streams detected,
/// given to each of its streams that detected another or none yet (a
/// language the job gave is left as it is).
pub(super) fn settle_languages(streams: &mut [&mut Stream]) {
    let mut best: BTreeMap<usize, (String, f64)> = BTreeMap::new();
    for stream in streams.iter() {
        if let (Some(language), Some(probability)) = (&stream.language, stream.language_probability)
        {
            if best.get(&stream.clip).is_none_or(|b| probability > b.1) {
                best.insert(stream.clip, (language.clone(), probability));
            }
        }
    }
    for stream in streams.iter_mut() {
        if stream.language.is_some() && stream.language_probability.is_none() {
            continue;
        }
        if let Some((language, probability)) = best.get(&stream.clip) {
            stream.language = Some(language.clone());
            stream.language_probability = Some(*probability);
        }
    }
}

/// Where each stream is on the original timeline, for each clip's
/// progress: the position of its least advanced chunk.
pub(super) struct Progress {
    clips: Vec<usize>,
    positions: Mutex<Vec<f64>>,
}

impl Progress {
    pub(super) fn new(streams: &mut [Mutex<Stream>]) -> Self {
        let (clips, positions) = streams
            .iter_mut()
            .map(|s| {
                let s = s.get_mut().unwrap_or_else(PoisonError::into_inner);
                (s.clip, s.chunk.start())
            })
            .unzip();
        Self {
            clips,
            positions: Mutex::new(positions),
        }
    }

    /// Records where the batch's streams now are, and reports the progress
    /// of their clips.
    fn advance(
        &self,
        batch: &[usize],
        streams: &[MutexGuard<Stream>],
        options: &[TranscribeOptions],
    ) {
        let Ok(mut positions) = self.positions.lock() else {
            return;
        };
        for (&i, stream) in batch.iter().zip(streams) {
            positions[i] = if stream.active() {
                let seconds = (stream.seek * HOP) as f64 / SAMPLE_RATE as f64;
                stream.chunk.original_time(seconds)
            } else {
                f64::INFINITY
            };
        }
        let clips: BTreeSet<usize> = batch.iter().map(|&i| self.clips[i]).collect();
        for clip in clips {
            let Some(control) = options.get(clip).and_then(|o| o.control.as_ref()) else {
                continue;
            };
            let done = positions
                .iter()
                .zip(&self.clips)
                .filter(|(_, &c)| c == clip)
                .map(|(&p, _)| p)
                .fold(f64::INFINITY, f64::min);
            if done.is_finite() {
                control.report(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batch_size;

    #[test]
    fn windows_are_spread_evenly_over_the_callers() {
        // Six chunks, two callers: three each, not eight and nothing.
        assert_eq!(batch_size(6, 8, 2), 3);
        // Twenty: four calls of five, not 8 + 8 + 4.
        assert_eq!(batch_size(20, 8, 2), 5);
        assert_eq!(batch_size(3, 8, 2), 2);
        assert_eq!(batch_size(10, 8, 1), 5);
        assert_eq!(batch_size(8, 8, 1), 8);
        assert_eq!(batch_size(1, 8, 4), 1);
        assert_eq!(batch_size(0, 8, 2), 1);
    }
}
