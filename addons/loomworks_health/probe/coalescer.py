# SPDX-License-Identifier: LGPL-3.0-or-later
"""One round trip in flight per process and target; concurrent callers share the next one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

# What the callers sharing a run get when it ends by a BaseException that is not an
# Exception (gevent's Timeout or GreenletExit, SystemExit...): that propagates to the
# caller that ran it; the others fail with "error" instead of passing.
INTERRUPTED = "error"


class Coalescer:
    """Runs ``attempt`` for a caller, or lets it share a run that started after it arrived.

    A caller is only ever answered by a run that *started after it arrived*: if
    one is already running it waits for it to end and for the following one,
    which then serves every caller that queued meanwhile. Under a burst of calls
    the database sees one query at a time on one connection, and no answer is
    older than the call it answers.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running: set[Hashable] = set()
        self.started: dict[Hashable, int] = {}
        self.finished: dict[Hashable, tuple[int, str | None]] = {}  # target -> (index, error code)

    def run(self, target: Hashable, budget: float, attempt: Callable[[], str | None]) -> str | None:
        """The code of the run that answers this call (None: pass); ``timeout`` after ``budget`` seconds.

        ``attempt`` returns None or an error code; it must not raise an ``Exception``. If it
        raises anyway, that propagates to this caller and the callers sharing the run get
        ``INTERRUPTED``.
        """
        deadline = time.monotonic() + budget
        with self.cond:
            need = self.started.get(target, 0) + 1
            while True:
                index, code = self.finished.get(target, (0, None))
                if index >= need:
                    return code
                if target not in self.running:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                self.cond.wait(remaining)
            self.running.add(target)
            index = self.started[target] = self.started.get(target, 0) + 1
        code: str | None = INTERRUPTED  # until attempt() returns: never a pass without a round trip
        try:
            code = attempt()
        finally:
            with self.cond:
                self.running.discard(target)
                self.finished[target] = (index, code)
                self.cond.notify_all()
        return code
