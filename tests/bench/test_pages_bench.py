"""The page benchmark: its JSON on one cheap page (AppTest only), and that it leaves assets/ as it
found it."""

from __future__ import annotations

import io
import json
import math
import os
from contextlib import redirect_stdout

import pytest

from vizvae.__main__ import main
from bench.leftovers import WriteRecorder, bootstrap_code
from bench.pages import CASES, chosen_cases, top_own_functions
from vizvae.errors import VizvaeError


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_pages_bench_on_the_model_page_prints_the_promised_json():
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["bench", "--only", "pages", "--json", "-o", "browser=0", "-o", "pages=model", "-o", "profile=0"])
    assert code == 0
    result = json.loads(out.getvalue())
    assert set(result) >= {"pages", "acquisition_row_s", "acquisition_step_ms", "slowest_interaction_ms",
                           "cold_start_s", "cold_start_ratio"}
    (name,) = result["pages"]
    page = result["pages"][name]
    assert name == "model" and "error" not in page
    assert positive(page["first_ms"]) and positive(page["interaction_ms"])
    assert result["slowest_interaction_ms"] == page["interaction_ms"]
    # not measured in this run: said so, not made up
    assert result["acquisition_row_s"] is None and result["cold_start_ratio"] is None


def test_every_page_of_the_app_is_benchmarked_and_names_are_checked():
    from app import PAGES

    assert {case.page for case in CASES} == {name for name, _, _ in PAGES}
    assert [c.name for c in chosen_cases("posterior")] == ["posterior", "posterior@mnist-hhvae"]
    assert next(c for c in CASES if c.name == "model").path == "/?model=mnist-vae-2d"  # the default page is /
    with pytest.raises(VizvaeError, match="nowhere"):
        chosen_cases("model,nowhere")


def test_write_recorder_undoes_created_replaced_and_overwritten_files(tmp_path):
    root = tmp_path / "assets"
    (root / "model").mkdir(parents=True)
    shipped = root / "model" / "saia.json"
    shipped.write_text("shipped")
    os.utime(shipped, ns=(1_000_000_000, 1_000_000_000))
    outside = tmp_path / "elsewhere.txt"
    with WriteRecorder(root) as writes:
        (root / "model" / "cache").mkdir()
        (root / "model" / "cache" / "projection.npy").write_bytes(b"new")
        temporary = root / "model" / ".tmp-result"
        temporary.write_text("replacing")
        os.replace(temporary, root / "model" / "result.json")
        shipped.write_text("overwritten")
        outside.write_text("not under the root")
    undone = writes.undo()
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["model", "model/saia.json"]
    assert shipped.read_text() == "shipped" and shipped.stat().st_mtime_ns == 1_000_000_000
    assert outside.read_text() == "not under the root"  # only the root is watched
    assert "restored model/saia.json" in undone and "removed model/cache" in undone


def test_a_recorder_outside_its_context_records_nothing(tmp_path):
    recorder = WriteRecorder(tmp_path)
    with recorder:
        pass
    (tmp_path / "later.txt").write_text("after the benchmark")
    assert recorder.undo() == [] and (tmp_path / "later.txt").is_file()


def test_bootstrap_runs_the_module_after_installing_the_recorder(tmp_path):
    code = bootstrap_code(tmp_path, tmp_path / "log.json", ["streamlit", "run", "app.py"])
    assert code.index("WriteRecorder(") < code.index("run_module('streamlit'")
    compile(code, "<bootstrap>", "exec")


def test_profile_lines_skip_the_frames_every_run_passes_through():
    rows = ["  1000 function calls in 2.0 seconds",
            "  1  0.0  0.0  2.0  2.0 /work/main/app.py:43(main)",
            "  1  0.0  0.0  2.0  2.0 /site-packages/streamlit/runtime/x.py:1(wrapper)",
            "  1  0.0  0.0  1.9  1.9 /work/main/vizvae/inference/projection.py:100(project)",
            "  1  0.0  0.0  1.8  1.8 /site-packages/umap/umap_.py:2300(fit)"]
    assert top_own_functions(rows, 1) == [rows[0].strip(), rows[3]]


@pytest.mark.parametrize("fraction, running", [(1.0, False), (0.25, True)])
def test_a_bar_short_of_full_is_a_job_still_working(tmp_path, fraction, running):
    from streamlit.testing.v1 import AppTest

    from bench.pages import job_running

    script = tmp_path / "bar.py"
    script.write_text(f"import streamlit as st\nst.progress(1.0, text='a finished loop')\nst.progress({fraction})\n")
    assert job_running(AppTest.from_file(str(script)).run()) is running
