"""libretranslatepy (ops/fetch-clients.sh) against voxq's LibreTranslate
routes: translate, languages and detect as the client calls them (form
bodies, the key in `api_key`), and the errors it raises for a wrong key, a
spent quota and a bad language. Prints one JSON object; tests/e2e/
libretranslate.rs judges it."""

import json
import os
import sys
import urllib.error

from libretranslatepy import LibreTranslateAPI

base = os.environ["BASE"]
out = {}

lt = LibreTranslateAPI(base, os.environ["KEY"])
out["languages"] = lt.languages()
out["translation"] = lt.translate(os.environ["TEXT"], "en", "de")
out["detected"] = lt.detect(os.environ["GERMAN"])


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
