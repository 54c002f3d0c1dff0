# SPDX-License-Identifier: LGPL-3.0-or-later
"""The coalescer on its own: which round trip answers which caller.

No database: the round trip is a callable the test holds, and the callers are
threads. The test waits on events, never on time, except for the budget test.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from odoo.addons.loomworks_health.probe.coalescer import Coalescer
from odoo.tests.common import BaseCase

TIMEOUT = 30  # seconds; a bound for a stuck test, never reached when it passes


class _Interrupted(BaseException):
    """Like gevent's Timeout or GreenletExit: not an Exception."""


class _CountingCondition(threading.Condition):
    """Sets ``reached`` once ``n`` callers wait (the coalescer calls wait() with its lock held)."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.waits = 0
        self.reached = threading.Event()

    def wait(self, timeout=None):
        self.waits += 1
        if self.waits >= self.n:
            self.reached.set()
        return super().wait(timeout)


class _RoundTrips:
    """The attempt: the first run blocks until released; later runs return ``then`` (or raise it)."""

    def __init__(self, first, then):
        self.first, self.then = first, then
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self):
        self.runs += 1
        if self.runs == 1:
            self.started.set()
            if not self.release.wait(TIMEOUT):
                raise AssertionError("the first round trip was never released")
            return self.first
        if isinstance(self.then, BaseException):
            raise self.then
        return self.then


class TestCoalescer(BaseCase):
    def _queue_two_callers(self, pool, round_trips, budget=TIMEOUT):
        """A first caller runs the (blocked) first round trip; two more call while it runs."""
        coalescer = Coalescer()
        coalescer.cond = _CountingCondition(2)
        first = pool.submit(coalescer.run, "db", TIMEOUT, round_trips)
        self.assertTrue(round_trips.started.wait(TIMEOUT))
        later = [pool.submit(coalescer.run, "db", budget, round_trips) for _ in range(2)]
        return coalescer, first, later

    def test_a_call_is_answered_by_a_round_trip_started_after_it_arrived(self):
        round_trips = _RoundTrips(first="unreachable", then=None)
        with ThreadPoolExecutor(max_workers=3) as pool:
            coalescer, first, later = self._queue_two_callers(pool, round_trips)
            self.assertTrue(coalescer.cond.reached.wait(TIMEOUT), "the two callers never queued")
            round_trips.release.set()
            self.assertEqual(first.result(TIMEOUT), "unreachable")
            # not the answer of the round trip that was running when they arrived
            self.assertEqual([f.result(TIMEOUT) for f in later], [None, None])
        self.assertEqual(round_trips.runs, 2, "the two queued callers did not share one round trip")

    def test_an_interrupted_round_trip_passes_nobody(self):
        interrupted = _Interrupted()
        round_trips = _RoundTrips(first=None, then=interrupted)
        with ThreadPoolExecutor(max_workers=3) as pool:
            coalescer, first, later = self._queue_two_callers(pool, round_trips)
            self.assertTrue(coalescer.cond.reached.wait(TIMEOUT), "the two callers never queued")
            round_trips.release.set()
            self.assertIsNone(first.result(TIMEOUT))
            outcomes = sorted(
                repr(f.exception(TIMEOUT)) if f.exception(TIMEOUT) else repr(f.result(TIMEOUT)) for f in later
            )
        # the caller that ran it sees the interruption; the one that shared it fails, never passes
        self.assertEqual(outcomes, sorted([repr(interrupted), repr("error")]))
        self.assertEqual(round_trips.runs, 2)

    def test_a_queued_call_gives_up_after_its_budget(self):
        round_trips = _RoundTrips(first=None, then=None)
        with ThreadPoolExecutor(max_workers=3) as pool:
            _, first, later = self._queue_two_callers(pool, round_trips, budget=0.05)
            try:
                self.assertEqual([f.result(TIMEOUT) for f in later], ["timeout", "timeout"])
                self.assertFalse(first.done(), "the running round trip ended before the budget")
            finally:
                round_trips.release.set()
            self.assertIsNone(first.result(TIMEOUT))
        self.assertEqual(round_trips.runs, 1)
