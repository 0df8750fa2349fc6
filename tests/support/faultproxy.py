"""A small HTTP proxy in front of the stand-in cloud server.

It counts requests, and injects the faults a real server will not produce on
demand: delays, 429 with Retry-After, 5xx, and streams cut mid-answer.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    """Forward to ``upstream``; ``faults`` is a queue of directives, one per request:

    ``"ok"``, ``"delay:S"``, ``"429:RETRY_AFTER"``, ``"500"``, ``"503"``,
    ``"drop:N"`` (cut the stream after N lines), ``"refuse"`` (close at once).
    """

    def __init__(self, upstream: str | list[str]) -> None:
        # Several upstreams are served round-robin (a cloud with parallel capacity).
        urls = [upstream] if isinstance(upstream, str) else upstream
        self.upstreams = [(urlsplit(u).hostname, urlsplit(u).port) for u in urls]
        self._turn = 0
        self.faults: list[str] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy._handle(self, None)

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                proxy._handle(self, self.rfile.read(length))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def _next_fault(self) -> str:
        with self._lock:
            return self.faults.pop(0) if self.faults else "ok"

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        fault = self._next_fault()
        record = {"path": h.path, "fault": fault, "time": time.time(), "headers": dict(h.headers)}
        record["body"] = json.loads(body) if body else None
        with self._lock:
            self.requests.append(record)
        kind, _, arg = fault.partition(":")
        if kind == "refuse":
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "delay":
            time.sleep(float(arg))
        if kind in ("429", "500", "502", "503"):
            payload = json.dumps({"error": {"message": f"injected {kind}", "type": "injected"}}).encode()
            h.send_response(int(kind))
            h.send_header("content-type", "application/json")
            if kind == "429" and arg:
                h.send_header("retry-after", arg)
            h.send_header("content-length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        self._forward(h, body, int(arg) if kind == "drop" else None)

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes | None, drop_after: int | None) -> None:
        with self._lock:
            host, port = self.upstreams[self._turn % len(self.upstreams)]
            self._turn += 1
        conn = http.client.HTTPConnection(host, port, timeout=300)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(k, v)
        h.send_header("connection", "close")
        h.end_headers()
        lines = 0
        while True:
            line = resp.readline()
            if not line:
                break
            h.wfile.write(line)
            h.wfile.flush()
            if line.strip():
                lines += 1
            if drop_after is not None and lines >= drop_after:
                # Cut the connection mid-answer, without a clean end.
                h.connection.shutdown(socket.SHUT_RDWR)
                break
        conn.close()

    @property
    def completions(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]
