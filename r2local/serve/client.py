"""`r2local ask` through a running `r2local serve`: one plain request with ask's options.

The request asks for r2local's full result (``r2local.result``): the same JSON an
in-process `ask --json` prints, so both paths print alike. Standard library only:
a cold `ask` should not pay for importing an HTTP client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from r2local.errors import R2Error
from r2local.serve.discovery import Running

TIMEOUT_S = 3600.0  # a question may take long on a slow machine; Ctrl-C ends it (and the server cancels it)


class Unreachable(Exception):
    """The server did not take the question: answer in-process instead."""


def ask(running: Running, token: str, question: str, *, local_only: bool, conversation: str | None) -> dict[str, Any]:
    """Ask ``question`` (in ``conversation``: an id, a suffix or "last"; None starts one).

    Returns the reply's ``r2local`` object: ``result`` (as ``AskResult.to_json``) and ``notices``.
    """
    body = {
        "model": "r2local-local" if local_only else "r2local",
        "messages": [{"role": "user", "content": question}],
        "r2local": {"conversation_id": conversation or "new", "result": True, "shadow": True},
    }
    request = urllib.request.Request(
        f"{running.url}/chat/completions", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            reply = json.load(response)
    except urllib.error.HTTPError as exc:
        error = _error_of(exc)
        if exc.code == 401:
            raise Unreachable("it refused the token in serve-token") from None
        raise R2Error(error.get("message") or f"the server answered HTTP {exc.code}", fix=error.get("fix")) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            raise Unreachable("nothing listens there") from None
        raise R2Error(f"the running r2local serve at {running.url} failed: {exc.reason}",
                      fix="ask again with --no-server to answer in-process") from None
    extra = reply.get("r2local") if isinstance(reply, dict) else None
    if not isinstance(extra, dict) or not isinstance(extra.get("result"), dict):
        raise R2Error(f"the running r2local serve at {running.url} sent no r2local result (an older version?)",
                      fix="restart `r2local serve`, or ask with --no-server")
    return extra


def _error_of(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        error = json.loads(exc.read()).get("error")
    except (OSError, ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}
