"""Long-form benchmark: a generated recording of several minutes (sentences
with pauses of 0.5-3 s, a 40 s stretch without speech holding a burst of
noise), transcribed by voxq's worker and by faster-whisper in its three
modes, on the same tiny.en model directory, int8, 2 threads, beam 5.

For each: median seconds over the timed runs (after a warm-up, model
loading left out), RTFx (audio seconds per second), WER against the
script, and the words emitted inside the stretch without speech.

    longform_bench.py WORKER_BIN CT2_MODEL GGML_MODEL RUNS WORKDIR
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
import wave

import numpy as np


def test_sentences():
    """The sentences of the test suite's long recording
    (tests/e2e/common/long_speech.rs): varied, as speech is. Text that
    repeats itself compresses well, and Whisper's compression-ratio check
    would send every window through the temperature fallback."""
    path = os.path.join(os.path.dirname(__file__), "../../tests/e2e/common/long_speech.rs")
    source = open(path, encoding="utf-8").read()
    body = source.split("pub const SENTENCES: &[&str] = &[", 1)[1].split("];", 1)[0]
    return re.findall(r'"([^"]+)"', body)


SENTENCES = test_sentences()
PAUSES = [0.5, 1.2, 2.0, 3.0, 0.8, 1.6, 2.5]
RATE = 16000
SILENCE = 40.0


def espeak(text, path):
    raw = path + ".22k.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", raw, text], check=True)
    pcm = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", raw, "-ar", "16000", "-ac", "1", "-f", "s16le", "-"],
        check=True, capture_output=True).stdout
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    loud = np.nonzero(np.abs(samples) > 300)[0]
    return samples[loud[0]:loud[-1] + 1] if len(loud) else samples


def generate(workdir):
    """The recording, its sentences' (start, end) and the silent stretch."""
    rng = np.random.default_rng(1)
    parts, times, t = [np.zeros(RATE)], [], 1.0
    silence = None
    for i, sentence in enumerate(SENTENCES):
        speech = espeak(sentence, os.path.join(workdir, f"s{i}"))
        times.append((t, t + len(speech) / RATE))
        parts.append(speech)
        t += len(speech) / RATE
        if i + 1 == len(SENTENCES) // 2:
            silence = (t, t + SILENCE)
            quiet = np.zeros(int((SILENCE - 4.0) / 2 * RATE))
            burst = rng.uniform(-2000, 2000, int(4.0 * RATE))
            parts += [quiet, burst, quiet]
            t += SILENCE
        else:
            pause = PAUSES[i % len(PAUSES)]
            parts.append(np.zeros(int(pause * RATE)))
            t += pause
    audio = np.concatenate(parts)
    audio += rng.uniform(-40, 40, len(audio))
    path = os.path.join(workdir, "longform.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(audio, -32768, 32767).astype("<i2").tobytes())
    return path, len(audio) / RATE, times, silence


def words(text):
    text = text.lower().replace("-", " ")
    return re.sub(r"[^\w\s']", "", text).split()


def wer(reference, hypothesis):
    r, h = words(reference), words(hypothesis)
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(h) + 1):
            cost = r[i - 1] != h[j - 1]
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + cost)
    return row[len(h)] / max(len(r), 1)


def words_in(segments, span):
    """Words of the segments that lie inside `span` (by segment midpoint
    when a segment has no word times)."""
    start, end = span[0] + 0.5, span[1] - 0.5
    count = 0
    for s in segments:
        middle = (s["start"] + s["end"]) / 2
        if start < middle < end:
            count += len(words(s["text"]))
    return count


def faster_whisper_runs(model_dir, audio, runs):
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=2)
    batched = BatchedInferencePipeline(model=model)
    modes = {
        "faster-whisper sequential": lambda: model.transcribe(
            audio, beam_size=5, language="en", vad_filter=False),
        "faster-whisper vad_filter": lambda: model.transcribe(
            audio, beam_size=5, language="en", vad_filter=True),
        "faster-whisper batched (8)": lambda: batched.transcribe(
            audio, beam_size=5, language="en", batch_size=8),
    }
    out = {}
    for name, run in modes.items():
        seconds, segments = [], []
        for i in range(runs + 1):
            started = time.perf_counter()
            result, _ = run()
            segments = [{"start": s.start, "end": s.end, "text": s.text} for s in result]
            if i:
                seconds.append(time.perf_counter() - started)
        out[name] = (seconds, segments)
    return out


def voxq_run(worker, engine, model, audio, runs, vad, threads=0):
    """`threads` per call, 0 for the worker's default: on 2 cores voxq's
    CTranslate2 engine then makes two one-thread calls side by side (2
    threads in all, as faster-whisper's)."""
    env = dict(os.environ, VOXQ_ENGINE=engine)
    output = subprocess.run(
        [worker, "--model-dir", model, "--threads", str(threads), "--beam-size", "5",
         "--compute-type", "int8", "--log", "warn", "transcribe", audio,
         "--language", "en", "--runs", str(runs), "--vad", "true" if vad else "false"],
        check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result["seconds"], result["result"]["segments"]


def main():
    worker, ct2_model, ggml_model, runs, workdir = sys.argv[1:6]
    runs = int(runs)
    audio, duration, times, silence = generate(workdir)
    reference = " ".join(SENTENCES)
    rows = {
        "voxq ct2-whisper, VAD (default threads)": voxq_run(
            worker, "ct2-whisper", ct2_model, audio, runs, True),
        "voxq ct2-whisper, VAD, 1 call x 2 threads": voxq_run(
            worker, "ct2-whisper", ct2_model, audio, runs, True, threads=2),
        "voxq ct2-whisper, sequential": voxq_run(
            worker, "ct2-whisper", ct2_model, audio, runs, False),
        "voxq whisper-cpp, VAD": voxq_run(worker, "whisper-cpp", ggml_model, audio, runs, True),
        "voxq whisper-cpp, sequential": voxq_run(
            worker, "whisper-cpp", ggml_model, audio, runs, False),
    }
    rows.update(faster_whisper_runs(ct2_model, audio, runs))
    print(f"audio: {duration:.1f} s, {len(SENTENCES)} sentences, silent stretch "
          f"{silence[0]:.1f}-{silence[1]:.1f} s; runs: {runs}; tiny.en int8, 2 threads, beam 5")
    print(f"{'':40} {'median s':>9} {'RTFx':>6} {'WER':>6} {'segments':>8} {'words in silence':>16}")
    medians = {}
    for name, (seconds, segments) in rows.items():
        median = statistics.median(seconds)
        medians[name] = median
        text = " ".join(s["text"].strip() for s in segments)
        print(f"{name:40} {median:9.2f} {duration / median:6.1f} {wer(reference, text):6.3f} "
              f"{len(segments):8d} {words_in(segments, silence):16d}")
    ours = medians["voxq ct2-whisper, VAD (default threads)"]
    fastest = min(v for k, v in medians.items() if k.startswith("faster-whisper"))
    print(f"speed-up of voxq (VAD, default threads) over faster-whisper's fastest mode: "
          f"{fastest / ours:.2f}x")


if __name__ == "__main__":
    main()
