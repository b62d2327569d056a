"""Long work in a background thread: progress, an ETA, cancellation and a cap on what may start.

A job's work is a plain function ``work(report, *args, **kwargs)``. It calls
``report(fraction, message)`` between chunks (a Gibbs sweep, a batch of HMC iterations, one
method of a comparison); ``report`` records how far it got and raises ``Cancelled`` once the job
was cancelled (or ran past its cap), so cancelling stops the work at its next chunk and nothing
half-done is kept. ``part(report, start, stop)`` maps a sub-task's own 0..1 onto a slice of the
whole, so a loop over methods gives each method its share of the bar.

``JobRunner`` holds the jobs of one user, one per name: submitting a name with other inputs
(another ``key``) cancels the job it replaces, so changing an input never leaves the old work
burning CPU. The app keeps one runner per session; nothing here imports Streamlit.

The cap: ``max_job_seconds()`` (``VIZVAE_MAX_JOB_SECONDS``, default ``DEFAULT_MAX_JOB_SECONDS``)
is the longest one interaction may start. ``check_cap`` refuses, before anything starts, work
whose estimate (its size in work units times the rate measured on earlier jobs of the same name,
``RATES``) is over it; a job that runs past it anyway is stopped like a cancelled one.

Base layer: it imports no vizvae module but ``errors``.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from vizvae.errors import VizvaeError

JOB_NICENESS_ENV = "VIZVAE_JOB_NICENESS"
CONCURRENT_JOBS_ENV = "VIZVAE_MAX_CONCURRENT_JOBS"
DEFAULT_JOB_NICENESS = 10  # added to a job thread's niceness: the server's own threads come first
DEFAULT_MAX_JOB_SECONDS = 300.0  # five minutes: the longest one click may start
MAX_JOB_SECONDS_ENV = "VIZVAE_MAX_JOB_SECONDS"
MIN_FRACTION_FOR_ETA = 0.02  # below it the time left is a guess from too little
MIN_SECONDS_FOR_ETA = 0.5

Report = Callable[..., None]  # report(fraction, message=None); raises Cancelled


def job_niceness() -> int:
    """How much lower than the server's own threads a job's thread runs (``VIZVAE_JOB_NICENESS``, 0–19)."""
    try:
        value = int(os.environ.get(JOB_NICENESS_ENV, DEFAULT_JOB_NICENESS))
    except ValueError:
        return DEFAULT_JOB_NICENESS
    return min(max(value, 0), 19)


def concurrent_jobs() -> int:
    """How many jobs of this process run at once (``VIZVAE_MAX_CONCURRENT_JOBS``; default: the CPU
    cores). More would only share the same cores and the interpreter's lock with the threads that
    answer visitors; the others wait, saying so, and any of them can be cancelled while waiting."""
    try:
        value = int(os.environ.get(CONCURRENT_JOBS_ENV, 0))
    except ValueError:
        value = 0
    return value if value > 0 else max(1, os.cpu_count() or 1)


class _Slots:
    """A counting semaphore whose size is read once, on first use (so the setting can be changed
    before the server's first job)."""

    def __init__(self) -> None:
        self._semaphore: threading.Semaphore | None = None
        self._lock = threading.Lock()

    def _get(self) -> threading.Semaphore:
        with self._lock:
            if self._semaphore is None:
                self._semaphore = threading.Semaphore(concurrent_jobs())
            return self._semaphore

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return self._get().acquire(blocking, timeout)

    def release(self) -> None:
        self._get().release()


JOB_SLOTS = _Slots()


def yield_cpu_to_the_pages() -> None:
    """Lower the calling thread's CPU priority by ``job_niceness`` (Linux gives each thread its own
    niceness; elsewhere this does nothing). A job's torch work releases the GIL, so on a busy server
    the threads that answer the health check, draw a new visitor's first page or take a Cancel click
    get the cores first, and the jobs take what is left."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + job_niceness()))
    except OSError:
        pass


class Cancelled(Exception):
    """Raised inside a job's work by ``report`` once the job is cancelled; the runner catches it."""


class JobRefused(VizvaeError):
    """Work over the cap one interaction may start (the message says by how much and what to change)."""


# -- durations in words -------------------------------------------------------------------------------------------
def format_duration(seconds: float) -> str:
    """``0.42 s``, ``12 s``, ``2.5 min``, ``1 h 5 min``: seconds or minutes, never thousands of ms."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"
    if seconds < 90:
        return f"{round(seconds)} s"
    minutes = seconds / 60
    if minutes < 10:
        return f"{minutes:.1f} min"
    if minutes < 60:
        return f"{round(minutes)} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def time_left(fraction: float, elapsed: float) -> float | None:
    """Seconds left at a constant rate, ``elapsed · (1 − f) / f``; None while too little is done to tell."""
    if fraction < MIN_FRACTION_FOR_ETA or elapsed < MIN_SECONDS_FOR_ETA:
        return None
    return elapsed * (1.0 - min(fraction, 1.0)) / fraction


def eta_text(fraction: float, elapsed: float) -> str:
    """``about 12 s left`` (or ``estimating the time left`` at the start)."""
    left = time_left(fraction, elapsed)
    if left is None:
        return "estimating the time left"
    return "less than 1 s left" if left < 1 else f"about {format_duration(left)} left"


# -- the cap -------------------------------------------------------------------------------------------------------
def max_job_seconds() -> float:
    """The cap in seconds: ``VIZVAE_MAX_JOB_SECONDS`` when it is a positive number, else the default."""
    raw = os.environ.get(MAX_JOB_SECONDS_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_MAX_JOB_SECONDS
    return value if value > 0 and value == value and value != float("inf") else DEFAULT_MAX_JOB_SECONDS


class RateBook:
    """Seconds per work unit, per job name, measured on the jobs that finished (thread-safe).

    A name's rate is the fastest of its last ``keep`` jobs: a job's fixed costs (the first call of
    a process, loading, a busy moment) only ever slow it, so the fastest is the closest to the work
    itself, and an estimate from it refuses only work that cannot fit."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self._rates: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, name: str, units: float, seconds: float) -> None:
        if units <= 0 or seconds < 0:
            return
        with self._lock:
            self._rates.setdefault(name, deque(maxlen=self.keep)).append(seconds / units)

    def rate(self, name: str, default: float | None = None) -> float | None:
        with self._lock:
            rates = self._rates.get(name)
            return min(rates) if rates else default

    def estimate(self, name: str, units: float, default_rate: float | None = None) -> float | None:
        """Estimated seconds for ``units`` of ``name``'s work (None with no rate measured or given)."""
        rate = self.rate(name, default_rate)
        return None if rate is None else units * rate


RATES = RateBook()  # process-wide: every session's finished jobs teach the estimates


class ResultCache:
    """The results of the last ``size`` finished jobs, by (name, key), shared by every session of
    the process: a second user asking for the same inputs gets them at once (thread-safe)."""

    def __init__(self, size: int = 32):
        self.size = size
        self._results: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if (name, key) not in self._results:
                return default
            self._results.move_to_end((name, key))
            return self._results[(name, key)]

    def put(self, name: str, key: Hashable, result: Any) -> None:
        with self._lock:
            self._results[(name, key)] = result
            self._results.move_to_end((name, key))
            while len(self._results) > self.size:
                self._results.popitem(last=False)

    def __contains__(self, name_key: tuple[str, Hashable]) -> bool:
        with self._lock:
            return name_key in self._results


RESULTS = ResultCache()


def check_cap(estimated_seconds: float | None, cap: float | None = None, what: str = "This") -> None:
    """Raise ``JobRefused`` when the estimate is over the cap (nothing to check without an estimate)."""
    cap = max_job_seconds() if cap is None else cap
    if estimated_seconds is not None and estimated_seconds > cap:
        raise JobRefused(f"{what} would take about {format_duration(estimated_seconds)}, over the "
                         f"{format_duration(cap)} one interaction may start ({MAX_JOB_SECONDS_ENV}): "
                         "ask for less work")


# -- progress of a part ----------------------------------------------------------------------------------------
def part(report: Report, start: float, stop: float, prefix: str = "") -> Report:
    """A ``report`` for a sub-task whose 0..1 fills ``start``..``stop`` of the whole (messages get ``prefix``)."""
    def report_part(fraction: float, message: str | None = None) -> None:
        text = f"{prefix}{message}" if message else (prefix.rstrip(": ") or None)
        report(start + (stop - start) * min(max(float(fraction), 0.0), 1.0), text)
    return report_part


def no_report(fraction: float, message: str | None = None) -> None:
    """A ``report`` that records nothing and never cancels: the same work run in the foreground."""


# -- one job -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobProgress:
    """What a progress bar draws: state (running | done | failed | cancelled), fraction, message, times."""

    state: str
    fraction: float
    message: str
    elapsed: float
    eta: str

    @property
    def text(self) -> str:
        parts = [self.message] if self.message else []
        return " · ".join(parts + [f"{format_duration(self.elapsed)} so far", self.eta])


class Job:
    """``work(report, *args, **kwargs)`` in a daemon thread; see the module docstring."""

    def __init__(self, name: str, key: Hashable, work: Callable[..., Any], args: tuple = (),
                 kwargs: dict | None = None, *, units: float | None = None, max_seconds: float | None = None,
                 rates: RateBook | None = RATES, clock: Callable[[], float] = time.monotonic):
        self.name, self.key, self.units = name, key, units
        self._work, self._args, self._kwargs = work, tuple(args), dict(kwargs or {})
        self.max_seconds, self._rates, self._clock = max_seconds, rates, clock
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._state, self._fraction, self._message = "running", 0.0, ""
        self.reason = ""  # why it was cancelled, in words
        self._result: Any = None
        self.error: BaseException | None = None
        self.error_trace = ""
        self.started = self._ended = clock()
        self._thread = threading.Thread(target=self._run, name=f"vizvae-job-{name}", daemon=True)

    def start(self) -> Job:
        self.started = self._clock()
        self._thread.start()
        return self

    # the work's side -----------------------------------------------------------------------------------------
    def report(self, fraction: float, message: str | None = None) -> None:
        """Record progress; raise ``Cancelled`` when the job was cancelled or ran past its cap."""
        if self.max_seconds is not None and self._clock() - self.started > self.max_seconds:
            self.cancel(f"stopped at the {format_duration(self.max_seconds)} cap ({MAX_JOB_SECONDS_ENV})")
        if self._cancel.is_set():
            raise Cancelled(self.reason)
        with self._lock:
            self._fraction = min(max(float(fraction), self._fraction), 1.0)
            if message is not None:
                self._message = str(message)
        time.sleep(0)  # hand the GIL over: the page's thread answers a click (Cancel) between chunks

    def _run(self) -> None:
        yield_cpu_to_the_pages()
        if not self._wait_for_a_slot():
            self._finish("cancelled")
            return
        try:
            result = self._work(self.report, *self._args, **self._kwargs)
        except Cancelled:
            self._finish("cancelled")
        except BaseException as err:  # noqa: BLE001 - reported to whoever waits on the job, never swallowed
            self.error, self.error_trace = err, traceback.format_exc()
            self._finish("failed")
        else:
            self._result = result
            self._finish("cancelled" if self._cancel.is_set() else "done")
        finally:
            JOB_SLOTS.release()

    def _wait_for_a_slot(self) -> bool:
        """Take one of the process's ``JOB_SLOTS`` (False if cancelled while waiting). A job that had
        to wait says so, and its time (the cap, the ETA) counts from when it got its slot."""
        if JOB_SLOTS.acquire(blocking=False):
            return True
        with self._lock:
            self._message = "waiting for a free core (other visitors' work is running)"
        while not JOB_SLOTS.acquire(timeout=0.05):
            if self._cancel.is_set():
                return False
        with self._lock:
            self._message = ""
            self.started = self._clock()
        if self._cancel.is_set():
            JOB_SLOTS.release()
            return False
        return True

    def _finish(self, state: str) -> None:
        with self._lock:
            self._state, self._ended = state, self._clock()
            if state == "done":
                self._fraction = 1.0
        if state == "done" and self.units and self._rates is not None:
            self._rates.record(self.name, self.units, self._ended - self.started)
        self._finished.set()

    # the caller's side -----------------------------------------------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the work to stop at its next ``report``; the job reads as cancelled at once."""
        if not self._cancel.is_set() and not self._finished.is_set():
            self.reason = reason
            self._cancel.set()

    @property
    def state(self) -> str:
        """running | done | failed | cancelled (a cancelled job may still be finishing its chunk)."""
        with self._lock:
            if self._state == "running" and self._cancel.is_set():
                return "cancelled"
            return self._state

    @property
    def finished(self) -> bool:
        """Whether the thread has ended (a cancelled job's state is final before its thread ends)."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def elapsed(self) -> float:
        with self._lock:
            end = self._ended if self._state != "running" else self._clock()
        return end - self.started

    def progress(self) -> JobProgress:
        with self._lock:
            fraction, message = self._fraction, self._message
        elapsed, state = self.elapsed(), self.state
        return JobProgress(state, fraction, message, elapsed, eta_text(fraction, elapsed))

    def result(self, timeout: float | None = None) -> Any:
        """The work's return value (waiting up to ``timeout``); re-raises its exception, raises
        ``Cancelled`` for a cancelled job and ``TimeoutError`` while it still runs."""
        state = self.state
        if state == "running" and not self._finished.wait(timeout):
            raise TimeoutError(f"job {self.name!r} is still running")
        state = self.state
        if state == "failed":
            raise self.error  # type: ignore[misc]
        if state == "cancelled":
            raise Cancelled(self.reason)
        return self._result


# -- one user's jobs --------------------------------------------------------------------------------------------
class JobRunner:
    """One user's jobs, one per name. ``submit`` with the key of the name's current job returns that
    job, whatever its state (``restart=True`` starts it afresh); with another key it cancels that
    job and starts a new one."""

    def __init__(self, max_seconds: float | None = None, rates: RateBook | None = RATES):
        self.max_seconds, self.rates = max_seconds, rates
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Job | None:
        with self._lock:
            return self._jobs.get(name)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def submit(self, name: str, key: Hashable, work: Callable[..., Any], args: tuple = (),
               kwargs: dict | None = None, *, units: float | None = None, restart: bool = False) -> Job:
        with self._lock:
            old = self._jobs.get(name)
            if old is not None and old.key == key and not restart:
                return old
            if old is not None:
                old.cancel("replaced: the inputs changed")
            cap = self.max_seconds if self.max_seconds is not None else max_job_seconds()
            job = Job(name, key, work, args, kwargs, units=units, max_seconds=cap, rates=self.rates)
            self._jobs[name] = job
        return job.start()

    def cancel(self, name: str, reason: str = "cancelled") -> None:
        job = self.get(name)
        if job is not None:
            job.cancel(reason)

    def forget(self, name: str) -> None:
        """Cancel the name's job and drop it (its next ``submit`` starts afresh)."""
        with self._lock:
            job = self._jobs.pop(name, None)
        if job is not None:
            job.cancel("forgotten")

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()

    def estimate(self, name: str, units: float | None, default_rate: float | None = None) -> float | None:
        """Estimated seconds of ``units`` of ``name``'s work, from the rates measured so far."""
        if units is None or self.rates is None:
            return None if units is None or default_rate is None else units * default_rate
        return self.rates.estimate(name, units, default_rate)
