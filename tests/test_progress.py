"""Training-loop bookkeeping (vizvae/progress.py) and the one loop that uses it (vizvae/train/loop.py)."""

from __future__ import annotations

import io

import pytest
import torch

from vizvae.progress import Progress, TrainingLog, moving_average
from vizvae.train.loop import run_steps


def test_moving_average_starts_at_the_first_value_and_weights_the_newest_by_five_percent():
    assert moving_average(None, 3.0) == 3.0
    assert moving_average(10.0, 0.0) == pytest.approx(9.5)
    # a constant series stays put; a step change decays geometrically: 1 - 0.95^k of the way after k steps
    value = 0.0
    for _ in range(20):
        value = moving_average(value, 1.0)
    assert value == pytest.approx(1 - 0.95 ** 20)


def test_the_log_thins_the_history_to_every_nth_step_and_always_the_last():
    log = TrainingLog(23, every=5, history_keys=("step", "loss"), enabled=False)
    logged = [step for step in range(1, 24) if log.due(step)]
    assert logged == [5, 10, 15, 20, 23]
    assert TrainingLog(0, history_keys=("step", "loss"), enabled=False).history == {"step": [], "loss": []}


def test_smooth_skips_missing_values_and_keeps_each_average_apart():
    log = TrainingLog(3, enabled=False)
    log.smooth(loss=2.0, extra=None)
    smoothed = log.smooth(loss=4.0, extra=1.0)
    assert smoothed == {"loss": pytest.approx(0.95 * 2.0 + 0.05 * 4.0), "extra": 1.0}


def test_run_steps_records_the_smoothed_scalars_and_draws_a_bar():
    stream = io.StringIO()
    log = TrainingLog(10, "train toy", every=4, history_keys=("step", "loss"), stream=stream)
    model = torch.nn.Linear(1, 1)
    seen_modes = []

    def train_step(step: int) -> dict[str, float]:
        seen_modes.append(model.training)
        return {"loss": float(step)}

    history = run_steps(model, log, train_step, lambda s: {"loss": round(s["loss"], 4)}, shown={"loss": "loss"})
    expected, value = [], None
    for step in range(1, 11):
        value = moving_average(value, float(step))
        if step in (4, 8, 10):
            expected.append(round(value, 4))
    assert history == {"step": [4, 8, 10], "loss": expected}
    assert all(seen_modes) and not model.training  # trained in training mode, left in eval mode
    text = stream.getvalue()
    assert "train toy" in text and "step 10/10" in text and "loss" in text and "ETA" in text


def test_a_quiet_progress_prints_nothing(capsys):
    quiet = Progress(label="x", enabled=False)
    quiet.message("hello")
    log = quiet.log(3, stage="stage 2: VI")
    for _ in range(3):
        log.advance(loss=1.0)
    log.close()
    assert capsys.readouterr().err == ""
