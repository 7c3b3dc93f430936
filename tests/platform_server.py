"""A partner platform stand-in on loopback (http.server in a thread): records every POST and answers as scripted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Platforms:
    """Requests received, and scripted answers per (platform, work id): a list of statuses, then 201."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def conn(self, platform: str) -> str:
        """An Airflow connection (JSON form) to this server for ``platform``."""
        return json.dumps({"conn_type": "http", "host": f"{self.url}/{platform}", "extra": {"X-Partner": "kepu"}})

    def received(self, platform: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if platform is None or r["platform"] == platform]


@contextmanager
def platform_server() -> Iterator[Platforms]:
    state = Platforms(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            platform = self.path.strip("/").split("/")[0]
            payload = json.loads(body or b"{}")
            work = (payload.get("work") or {}).get("id", "")
            with state.lock:
                state.requests.append(
                    {"platform": platform, "path": self.path, "headers": dict(self.headers), "body": body, "work": work}
                )
                queue = state.script.get((platform, work)) or []
                status = queue.pop(0) if queue else 201
            answer = json.dumps(
                {"id": f"{platform}-{work}"} if status < 300 else {"error": f"status {status}"}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
