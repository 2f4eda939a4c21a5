"""faster-whisper reference timing: same model directory, int8, beam 5,
language fixed. Prints JSON: {"text": ..., "seconds": [...]}."""
import json
import sys
import time

from faster_whisper import WhisperModel

model_dir, audio, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)


def transcribe():
    segments, _ = model.transcribe(audio, beam_size=5, language="en", vad_filter=False)
    return " ".join(s.text.strip() for s in segments)


transcribe()  # warm-up, as the worker does
times, text = [], ""
for _ in range(runs):
    started = time.perf_counter()
    text = transcribe()
    times.append(time.perf_counter() - started)
print(json.dumps({"text": text, "seconds": times}))
