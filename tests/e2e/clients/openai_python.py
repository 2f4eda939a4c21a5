"""OpenAI's Python SDK against voxq's OpenAI-compatible routes.

Prints one JSON object of what each call returned or raised; the Rust test
(tests/e2e/openai.rs) judges it. Settings come from the environment: BASE
(the API's /v1 URL), KEY, WRONG_KEY, QUOTA_KEY (an account whose audio
quota is spent), AUDIO (a WAV file).
"""
import json
import os

import openai

base, audio = os.environ["BASE"], os.environ["AUDIO"]
# No retries: each call is one request, and a failure shows as itself.
client = openai.OpenAI(base_url=base, api_key=os.environ["KEY"], max_retries=0, timeout=300)


def transcribe(api=client, **kwargs):
    with open(audio, "rb") as f:
        return api.audio.transcriptions.create(model="whisper-1", file=f, **kwargs)


def raised(call):
    try:
        call()
        return {"class": None}
    except openai.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "body": e.body}


out = {
    "json": transcribe().text,
    "text": transcribe(response_format="text"),
    "srt": transcribe(response_format="srt"),
    "vtt": transcribe(response_format="vtt"),
    "verbose": transcribe(
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0,
        prompt="Coffee, hospital.",
    ).model_dump(),
    "models": [m.id for m in client.models.list()],
}
with open(audio, "rb") as f:
    out["translation"] = client.audio.translations.create(model="whisper-1", file=f).text
wrong = openai.OpenAI(base_url=base, api_key=os.environ["WRONG_KEY"], max_retries=0)
out["wrong_key"] = raised(lambda: transcribe(api=wrong))
spent = openai.OpenAI(base_url=base, api_key=os.environ["QUOTA_KEY"], max_retries=0)
out["quota"] = raised(lambda: transcribe(api=spent))
out["bad_format"] = raised(lambda: transcribe(response_format="docx"))
out["bad_model"] = raised(lambda: client.audio.transcriptions.create(
    model="no-such-model", file=open(audio, "rb")))
print(json.dumps(out))
