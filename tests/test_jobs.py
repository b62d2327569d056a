"""Background jobs: progress reaches 1, a cancel stops the work at its next chunk, a failure is
reported, a new key replaces the old job, the cap refuses before anything starts."""

from __future__ import annotations

import os
import threading

import pytest

from vizvae.jobs import (
    Cancelled, Job, JobRefused, JobRunner, RateBook, ResultCache, check_cap, eta_text, format_duration,
    max_job_seconds, part, time_left,
)

WAIT = 30.0  # seconds a test waits for a thread that should end at once (never reached when it passes)


def counting_work(report, n_chunks: int, gate: threading.Event | None = None, done: list | None = None):
    """``n_chunks`` chunks; with a gate, each chunk waits for it (so a test controls the pace)."""
    for i in range(n_chunks):
        report(i / n_chunks, f"chunk {i + 1} of {n_chunks}")
        if gate is not None:
            assert gate.wait(WAIT)
            gate.clear()
        if done is not None:
            done.append(i)
    report(1.0, "done")
    return sum(range(n_chunks))


def test_progress_reaches_one_and_the_result_comes_back():
    gate, done = threading.Event(), []
    job = Job("count", 1, counting_work, (4, gate, done)).start()
    fractions = []
    for _ in range(4):
        while job.progress().message != f"chunk {len(done) + 1} of 4":
            job.wait(0.005)
        fractions.append(job.progress().fraction)
        gate.set()
        while gate.is_set():
            job.wait(0.005)
    assert job.wait(WAIT)
    assert fractions == [0.0, 0.25, 0.5, 0.75]
    assert job.state == "done" and job.result() == 0 + 1 + 2 + 3
    assert job.progress().fraction == 1.0


def test_cancel_stops_the_work_within_one_chunk():
    gate, done = threading.Event(), []
    job = Job("count", 1, counting_work, (100,), dict(gate=gate, done=done)).start()
    gate.set()  # let chunk 0 finish
    while len(done) < 1:
        assert job.wait(0.01) is False
    job.cancel()
    assert job.state == "cancelled"  # reads as cancelled at once, before the chunk ends
    gate.set()  # the chunk in flight finishes, then the next report raises
    assert job.wait(WAIT)
    assert len(done) <= 2  # the chunk running when it was cancelled, no further one
    with pytest.raises(Cancelled):
        job.result()


def test_an_exception_in_the_work_is_reported_not_swallowed():
    def failing(report):
        report(0.5, "half way")
        raise ValueError("the decoder returned NaN")

    job = Job("fail", 1, failing).start()
    assert job.wait(WAIT)
    assert job.state == "failed"
    assert isinstance(job.error, ValueError) and "NaN" in str(job.error)
    assert "ValueError: the decoder returned NaN" in job.error_trace
    with pytest.raises(ValueError, match="NaN"):
        job.result()


def test_a_new_key_cancels_the_old_job_and_the_same_key_finds_it():
    runner = JobRunner(rates=None)
    gate = threading.Event()
    first = runner.submit("inpaint", ("image 0",), counting_work, (100, gate))
    assert runner.submit("inpaint", ("image 0",), counting_work, (100, gate)) is first
    second = runner.submit("inpaint", ("image 1",), counting_work, (3,))
    assert first.state == "cancelled" and "inputs changed" in first.reason
    gate.set()
    assert first.wait(WAIT) and second.wait(WAIT)
    assert runner.get("inpaint") is second and second.result() == 3
    restarted = runner.submit("inpaint", ("image 1",), counting_work, (3,), restart=True)
    assert restarted is not second and restarted.result(WAIT) == 3


def test_a_job_past_its_cap_is_stopped():
    now = [0.0]
    job = Job("slow", 1, counting_work, (10,), max_seconds=5.0, clock=lambda: now[0])
    job.report(0.1)
    now[0] = 6.0
    with pytest.raises(Cancelled, match="cap"):
        job.report(0.2)


def test_the_cap_refuses_before_starting(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_JOB_SECONDS", "60")
    assert max_job_seconds() == 60.0
    check_cap(59.0)
    check_cap(None)  # nothing known: nothing refused
    with pytest.raises(JobRefused, match="about 2.0 min, over the 60 s"):
        check_cap(120.0, what="Inpainting")
    for bad in ("-1", "0", "nan", "inf", "lots"):
        monkeypatch.setenv("VIZVAE_MAX_JOB_SECONDS", bad)
        assert max_job_seconds() == 300.0


def test_rates_are_learnt_from_finished_jobs():
    rates = RateBook(keep=2)
    assert rates.estimate("hmc", 100) is None and rates.estimate("hmc", 100, default_rate=0.1) == pytest.approx(10)
    rates.record("hmc", 100, 20.0)  # 0.2 s a unit
    rates.record("hmc", 100, 40.0)  # 0.4 s a unit: a slower job (a busy moment) does not raise the rate
    assert rates.estimate("hmc", 10) == pytest.approx(2.0)
    rates.record("hmc", 100, 30.0)  # the 0.2 s job is now older than the last two
    assert rates.estimate("hmc", 10) == pytest.approx(3.0)
    runner = JobRunner(rates=rates)
    job = runner.submit("tiny", 1, lambda report: 7, units=5)
    assert job.result(WAIT) == 7 and rates.rate("tiny") is not None


def test_part_maps_a_sub_task_onto_its_slice():
    seen = []
    report = part(lambda f, m=None: seen.append((f, m)), 0.5, 0.75, "HMC: ")
    report(0.0, "warm-up")
    report(1.0)
    report(2.0, "past the end")
    assert seen == [(0.5, "HMC: warm-up"), (0.75, "HMC"), (0.75, "HMC: past the end")]


@pytest.mark.parametrize("seconds, text", [(0.42, "0.42 s"), (4.23, "4.2 s"), (12.4, "12 s"), (154.953, "2.6 min"),
                                           (1500, "25 min"), (3900, "1 h 5 min"), (7200, "2 h")])
def test_durations_are_in_seconds_or_minutes(seconds, text):
    assert format_duration(seconds) == text
    assert "ms" not in format_duration(seconds)


def test_time_left_at_a_constant_rate():
    assert time_left(0.25, 4.0) == pytest.approx(12.0)  # a quarter in 4 s: three quarters in 12 s
    assert eta_text(0.25, 4.0) == "about 12 s left"
    assert time_left(0.001, 4.0) is None and eta_text(0.001, 4.0) == "estimating the time left"


def test_the_result_cache_keeps_the_newest():
    cache = ResultCache(size=2)
    cache.put("a", 1, "first")
    cache.put("a", 2, "second")
    assert cache.get("a", 1) == "first"  # now the newest
    cache.put("a", 3, "third")  # drops key 2, the least recently used
    assert ("a", 2) not in cache and cache.get("a", 1) == "first" and cache.get("a", 3) == "third"
    assert cache.get("b", 1, "none") == "none"


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread niceness is a Linux feature")
@pytest.mark.parametrize("setting, added", [(None, 10), ("3", 3), ("0", 0), ("99", 19), ("x", 10)])
def test_a_jobs_thread_runs_below_the_servers_own(monkeypatch, setting, added):
    if setting is None:
        monkeypatch.delenv("VIZVAE_JOB_NICENESS", raising=False)
    else:
        monkeypatch.setenv("VIZVAE_JOB_NICENESS", setting)

    def niceness(report):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = Job("nice", 1, niceness).start()
    assert job.wait(WAIT) and job.state == "done"
    assert job.result() == min(19, caller + added)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller  # the caller's is untouched
