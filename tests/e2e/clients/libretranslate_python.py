"""libretranslatepy (ops/fetch-clients.sh) against voxq's LibreTranslate
routes: translate (with `auto` too), languages and detect as the client
calls them (form bodies, the key in `api_key`), lists and HTML as JSON
clients send them, and the errors it raises for a wrong key, a spent quota
and a bad language. Prints one JSON object; tests/e2e/
libretranslate.rs judges it."""

import json
import os
import sys
import urllib.error
import urllib.request

from libretranslatepy import LibreTranslateAPI

base = os.environ["BASE"]
out = {}

lt = LibreTranslateAPI(base, os.environ["KEY"])
out["languages"] = lt.languages()
out["translation"] = lt.translate(os.environ["TEXT"], "en", "de")
out["detected"] = lt.detect(os.environ["GERMAN"])
out["auto"] = lt.translate(os.environ["GERMAN"], "auto", "en")


def post(path, body):
    """JSON as other LibreTranslate clients send it (libretranslatepy
    sends forms and single texts only): lists, HTML."""
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read().decode())


out["list"] = post(
    "/translate",
    {"q": [os.environ["TEXT"], os.environ["GERMAN"]], "source": "auto", "target": "fr",
     "api_key": os.environ["KEY"]},
)
out["html"] = post(
    "/translate",
    {"q": '<p class="x">' + os.environ["TEXT"] + "</p>", "source": "en", "target": "es",
     "format": "html", "api_key": os.environ["KEY"]},
)


def refused(name, call):
    """The HTTP error the client raised: its status and LibreTranslate's
    error body."""
    try:
        call()
    except urllib.error.HTTPError as e:
        out[name] = {"status": e.code, "body": json.loads(e.read().decode())}
        return
    out[name] = {"status": None, "body": None}


refused(
    "wrong_key",
    lambda: LibreTranslateAPI(base, os.environ["WRONG_KEY"]).translate("Hello.", "en", "de"),
)
refused(
    "quota",
    lambda: LibreTranslateAPI(base, os.environ["QUOTA_KEY"]).translate(
        os.environ["TEXT"], "en", "de"
    ),
)
refused("bad_language", lambda: lt.translate("Hello.", "en", "xx"))
refused("no_key", lambda: LibreTranslateAPI(base).translate("Hello.", "en", "de"))

json.dump(out, sys.stdout)
sys.stdout.flush()
