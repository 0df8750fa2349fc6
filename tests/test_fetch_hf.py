"""Hugging Face sources through huggingface_hub, against a local stand-in of the
Hub (HF_ENDPOINT): HEAD with the Hub's headers, GET with Range for resume.
The real Hub is not reachable from the test machines."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r2local import fetch
from r2local.errors import ModelError
from r2local.manifests import Manifest

REPO, FILE = "acme/tiny-GGUF", "tiny-q4_k_m.gguf"
DATA = bytes(range(256)) * 4096 + b"tail"  # ~1 MB
SHA = hashlib.sha256(DATA).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves one file the way the Hub's resolve endpoint does."""

    def __init__(self, data: bytes = DATA, etag: str = SHA, cuts: tuple[int, ...] = ()):
        self.data, self.etag = data, etag
        self.cuts = list(cuts)  # the next GETs break off after these many bytes
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _headers(self, status: int, length: int, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.etag}"')
                self.send_header("X-Linked-Etag", f'"{hub.etag}"')
                self.send_header("X-Linked-Size", str(len(hub.data)))
                self.send_header("Content-Length", str(length))
                self.send_header("Accept-Ranges", "bytes")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()

            def _route(self) -> bool:
                if self.path.split("?")[0] != f"/{REPO}/resolve/main/{FILE}":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                return True

            def do_HEAD(self):
                hub.requests.append(("HEAD", self.path, None))
                if self._route():
                    self._headers(200, len(hub.data))

            def do_GET(self):
                rng = self.headers.get("Range")
                hub.requests.append(("GET", self.path, rng))
                if not self._route():
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = hub.data[start:]
                if start:
                    self._headers(206, len(body), {"Content-Range": f"bytes {start}-{len(hub.data) - 1}/{len(hub.data)}"})
                else:
                    self._headers(200, len(body))
                if hub.cuts:  # this download breaks off midway
                    self.wfile.write(body[:hub.cuts.pop(0)])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    hubs = []

    def start(**kw) -> FakeHub:
        hub = FakeHub(**kw)
        hubs.append(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        # huggingface_hub writes (and can resume) per chunk; 10 MiB chunks would hide resume in a 1 MB file.
        monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 1 << 16)
        return hub

    yield start
    for hub in hubs:
        hub.close()


def manifest(sha: str | None = None, size: int | None = None) -> Manifest:
    return Manifest.model_validate({"name": "tiny", "format": "gguf", "sha256": sha, "size_bytes": size,
                                    "source": {"hf": {"repo": REPO, "file": FILE}}})


def test_download_into_the_hf_cache_with_progress_and_sha256(hub_env, tmp_path):
    hub = hub_env()
    seen = []
    path = fetch.resolve(manifest(SHA, len(DATA)), lambda what, done, total: seen.append((what, done, total)))
    assert path.read_bytes() == DATA
    assert str(path).startswith(str(tmp_path / "hf-cache"))  # the shared HF cache, not a private copy
    assert seen and seen[-1][0].endswith("(checking sha256)")
    byte_reports = [s for s in seen if s[0] == "tiny"]
    assert byte_reports[-1][1:] == (len(DATA), len(DATA))
    # Found again without the network: no new request.
    count = len(hub.requests)
    assert fetch.local_path(manifest(SHA, len(DATA))) == path
    assert fetch.resolve(manifest(SHA, len(DATA)), fetch=False) == path
    assert len(hub.requests) == count
    assert fetch.file_state(manifest(SHA, len(DATA))) == ("ok", path)


def test_a_broken_download_resumes(hub_env):
    hub = hub_env(cuts=(100_000, 200_000))  # huggingface_hub resumes from what it has, within the call
    path = fetch.resolve(manifest(SHA))
    assert path.read_bytes() == DATA
    ranges = [r for method, path, r in hub.requests if method == "GET" and "resolve" in path]
    assert ranges == [None, "bytes=65536-", "bytes=262144-"]  # each retry asked only for the rest


def test_a_download_that_keeps_failing_is_a_message(hub_env, monkeypatch):
    monkeypatch.setattr("huggingface_hub.file_download.time.sleep", lambda s: None)  # its retry back-off
    hub_env(cuts=(100_000,) + (0,) * 20)  # 100 kB, then the connection keeps dropping
    with pytest.raises(ModelError) as info:
        fetch.resolve(manifest(SHA))
    assert info.value.message == "cannot download acme/tiny-GGUF/tiny-q4_k_m.gguf: RemoteProtocolError"
    assert "network" in info.value.fix


def test_without_a_pinned_sha256_the_hubs_etag_is_checked(hub_env):
    hub_env(etag="f" * 64)  # the Hub says another sha256 than what arrives
    with pytest.raises(ModelError) as info:
        fetch.resolve(manifest(None))
    assert "does not match the Hub's" in info.value.message
    assert fetch.local_path(manifest(None)) is None  # the bad file is gone from the cache


def test_a_pinned_sha256_is_checked(hub_env):
    hub_env()
    with pytest.raises(ModelError) as info:
        fetch.resolve(manifest("0" * 64))
    assert "does not match the manifest" in info.value.message


def test_a_missing_file_names_the_manifest(hub_env):
    hub_env()
    bad = Manifest.model_validate({"name": "tiny", "format": "gguf",
                                   "source": {"hf": {"repo": REPO, "file": "nope.gguf"}}})
    with pytest.raises(ModelError) as info:
        fetch.resolve(bad)
    assert "is not on the Hub" in info.value.message
