import json
import re
import subprocess
import sys

import pytest

from vizvae.checkpoint import SHIPPED_DIR
from tests.app.helpers import SHIPPED, app, elements, errors, open_page, shipped


def markdown_tables(at) -> list[list[dict[str, str]]]:
    """The markdown tables on the page, as rows of {header: cell} in the text a browser shows."""
    tables = []
    for element in at.markdown:
        lines = element.value.splitlines()
        if len(lines) < 2 or not lines[0].startswith("| ") or not lines[1].startswith("|---"):
            continue

        def cells(line: str) -> list[str]:
            parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            return [re.sub(r"\\(.)", r"\1", part.strip()).replace("\u2060", "") for part in parts]

        header = cells(lines[0])
        tables.append([dict(zip(header, cells(line))) for line in lines[2:]])
    return tables


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_renders_for_each_shipped_model(name):
    at = app(model=shipped(name)).run()
    assert errors(at) == []
    assert at.session_state["model_picker"] == name
    assert at.title[0].value == name
    config = json.loads((SHIPPED_DIR / name / "config.json").read_text())
    is_table = config["dataset"]["kind"] == "table"
    assert [h.value for h in at.subheader] == ["Architecture", "Dataset", "Training", "Evaluation"] + (
        ["Columns"] if is_table else ["Prior samples", "Test reconstructions"])
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["parameters"].replace(",", "")) > (10_000 if is_table else 100_000)
    assert metrics["latent dimensions"] == " + ".join(map(str, config["latent_dims"]))
    evaluation = markdown_tables(at)[0]
    assert "test ELBO (nats)" in [row["metric"] for row in evaluation]
    assert not {row["metric"] for row in evaluation} & set(config["evaluation"])  # in words, no snake_case key
    elbo = next(row["value"] for row in evaluation if row["metric"] == "test ELBO (nats)")
    assert float(elbo) == pytest.approx(config["evaluation"]["test_elbo"])
    captions = " ".join(c.value for c in at.caption)
    assert f"Rebuild: `python -m vizvae rebuild --only {name}`" in captions  # never the builder's --out path
    assert ("Imputation (thesis §5.4 protocol)" in captions) == ("missing_nll" in config["evaluation"])
    images = at.get("image")
    assert images[0].proto.imgs[0].caption.startswith("Training curves")  # a static SVG: no plotly.js to load
    assert elements(at, "plotly_chart") == []
    if is_table:  # the columns and their likelihoods, the target last
        columns = markdown_tables(at)[1]
        assert [row["column"] for row in columns] == config["dataset"]["feature_names"] + [
            config["dataset"]["target_name"]]
        assert [row["likelihood"] for row in columns][:-1] == config["config"]["column_kinds"]
        described = " ".join(m.value for m in at.markdown)
        assert f"{len(config['config']['column_kinds'])} marginal VAEs" in described and "?" not in described
        return
    assert len(at.get("image")) == 3  # training curves, prior samples, reconstructions
    assert {b.key for b in at.get("download_button")} >= {"model_prior_png", "model_reconstructions_png",
                                                           "model_history_csv"}
    assert at.query_params["model"] == name


def test_seed_changes_the_prior_samples():
    at = app(model=shipped("mnist-vae-2d")).run()
    before = at.get("image")[1].value
    at.number_input(key="model_seed").set_value(7).run()
    assert errors(at) == []
    assert at.get("image")[1].value != before


def _untrained_checkpoint(key, folder):
    """A freshly initialised model of a registered family, saved with the shipped MNIST data
    description: the model card must draw for every family, trained or not."""
    import dataclasses
    import json

    from vizvae.checkpoint import SHIPPED_DIR, save_checkpoint
    from vizvae.models import MODEL_REGISTRY

    cls = MODEL_REGISTRY[key]
    if getattr(cls, "dependency_key", ""):  # mixed-type: boston's columns, its dependency model untrained
        table_config = json.loads((SHIPPED_DIR / shipped("boston-vaem") / "config.json").read_text())
        model = cls(cls.config_class.from_json(table_config["config"]))
        save_checkpoint(model, folder, name=f"untrained-{key}", dataset=table_config["dataset"],
                        training=table_config["training"], evaluation=table_config["evaluation"])
        return folder
    config = cls.config_class()
    fields = {f.name for f in dataclasses.fields(config)}
    overrides = {"input_shape": (1, 28, 28)} if "input_shape" in fields else {}
    attempts = [overrides, {**overrides, "clusters": 1}, {**overrides, "global_dim": 0}]
    refusals = []
    for attempt in attempts:
        try:
            model = cls(dataclasses.replace(config, **{k: v for k, v in attempt.items() if k in fields}))
            break
        except (TypeError, ValueError) as err:
            refusals.append(f"{attempt}: {err}")
    else:  # a registered family that cannot be built cannot be loaded either: that is a failure
        pytest.fail(f"{key}: no default configuration builds ({'; '.join(refusals)})")
    shipped_config = json.loads((SHIPPED_DIR / shipped("mnist-vae-2d") / "config.json").read_text())
    save_checkpoint(model, folder, name=f"untrained-{key}", dataset=shipped_config["dataset"],
                    training=shipped_config["training"], evaluation=shipped_config["evaluation"])
    return folder


def _registered_models():
    from vizvae.models import MODEL_REGISTRY

    return sorted(MODEL_REGISTRY)


@pytest.mark.parametrize("key", _registered_models())
def test_model_card_renders_for_every_model_family(key, tmp_path):
    folder = _untrained_checkpoint(key, tmp_path / key)
    at = app(model=str(folder)).run()
    assert errors(at) == []
    assert at.title[0].value == f"untrained-{key}"
    if at.subheader[-1].value == "Columns":  # a mixed-type model: its column table instead of image grids
        assert key in ("vaem", "miwaem", "hvaem", "hmcvaem", "hhvaem") and len(markdown_tables(at)[1]) == 14
        return
    assert len(at.get("image")) == 3


def test_a_user_checkpoints_rebuild_command_has_no_absolute_path_inside_the_repository(tmp_path):
    from vizvae.checkpoint import REPO_ROOT
    from vizvae.train.cards import rebuild_command

    out = REPO_ROOT / "runs" / "my vae"
    config = {"training": {"command": f"python -m vizvae train --model vae --dataset mnist --out '{out}'"}}
    assert rebuild_command(tmp_path, config) == "python -m vizvae train --model vae --dataset mnist --out 'runs/my vae'"
    elsewhere = {"training": {"command": "python -m vizvae train --model vae --out /data/x"}}
    assert rebuild_command(tmp_path, elsewhere) == "python -m vizvae train --model vae --out /data/x"


def test_after_the_first_page_the_other_pages_imports_are_warmed_once_per_process():
    import sys

    from pages import _common

    at = open_page("model", model=shipped("mnist-vae-2d"))
    assert errors(at) == []
    thread = _common.preload_in_background()
    assert thread is _common.preload_in_background()  # one per process
    thread.join(120)
    assert not thread.is_alive() and all(name in sys.modules for name in _common.PRELOADED)


def test_the_first_page_draws_without_pandas_torch_or_the_weights():
    """The app's first page is its cold start: it reads config.json and the stored grids only."""
    code = """
import sys
from streamlit.testing.v1 import AppTest
from pages import _common
_common.preload_in_background = lambda *a, **k: None  # what the app imports after the page is drawn
before = set(sys.modules)
at = AppTest.from_file("app.py", default_timeout=120)
at.run()
assert not at.exception, [e.value for e in at.exception]
assert at.title[0].value == "mnist-vae-2d", at.title
print(sorted(name for name in set(sys.modules) - before if name.split(".")[0] in ("pandas", "torch", "safetensors")))
"""
    from vizvae.checkpoint import REPO_ROOT

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_markdown_table_shows_config_text_as_typed_and_keeps_its_columns():
    from pages._common import plain
    from vizvae.viz.tables import markdown_table

    rows = [{"metric": "a|b", "value": "[x](http://evil)"}, {"metric": "*bold*", "value": None}]
    text = markdown_table(rows, escape=plain)

    class Page:
        markdown = [type("Markdown", (), {"value": text})()]

    assert markdown_tables(Page()) == [[{"metric": "a|b", "value": "[x](http://evil)"},
                                        {"metric": "*bold*", "value": ""}]]
