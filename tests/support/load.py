"""Logged-in clients driving page loads and JSON-RPC writes through the edge, in threads, while
a test changes the stack underneath (rolling updates, kills). Every request is recorded with
its start and end (monotonic), what it was, and its outcome: an HTTP status, or the name of
the error when no answer came. A page load that lands on the login page counts as a lost
session (status "logged-out")."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.support.rpc import login


@dataclass
class Outcome:
    kind: str  # "page" (GET /odoo) or "write" (POST call_kw res.partner.create)
    start: float
    end: float
    status: int | str  # HTTP status, "logged-out", or the exception's name

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


@dataclass
class Load:
    base: str
    db: str
    password: str
    clients: int = 20
    timeout: float = 120
    results: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        sessions = [login(self.base, self.db, self.password) for _ in range(self.clients)]
        for i, http in enumerate(sessions):
            t = threading.Thread(target=self._client, args=(i, http), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _client(self, i: int, http: requests.Session) -> None:
        n = 0
        while not self._stop.is_set():
            kind = "page" if n % 2 == 0 else "write"
            start = time.monotonic()
            try:
                if kind == "page":
                    r = http.get(f"{self.base}/odoo", timeout=self.timeout)
                    status: int | str = r.status_code
                    if "/web/login" in r.url:
                        status = "logged-out"
                else:
                    body = {"jsonrpc": "2.0", "method": "call", "id": n, "params": {
                        "model": "res.partner", "method": "create", "args": [{"name": f"load {i}-{n}"}],
                        "kwargs": {}}}
                    r = http.post(f"{self.base}/web/dataset/call_kw/res.partner/create", json=body,
                                  timeout=self.timeout)
                    status = r.status_code
                    if r.status_code == 200:
                        answer = r.json()
                        if "error" in answer:
                            status = "session-expired" if "Session" in str(answer["error"]) else "rpc-error"
            except (requests.RequestException, ValueError) as exc:
                status = type(exc).__name__
            self.results.append(Outcome(kind, start, time.monotonic(), status))
            n += 1

    def count(self) -> int:
        return len(self.results)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 10)
        return self.results

    def failures(self) -> list[Outcome]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        c = Counter(str(r.status) for r in self.results)
        return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))
