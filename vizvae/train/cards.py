"""The model card beside a checkpoint: ``card.md`` and the seed-0 preview grids.

``write_model_card`` loads the checkpoint once, stores its preview grids (``preview-*.png``, drawn
by ``vizvae.viz.card``) so that the app's Model page shows a shipped model without importing
torch or loading any weights, and writes what the model is and how well it does. Heavy modules
are imported inside the functions: ``stored_previews`` is on the app's start-up path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRIOR_PREVIEW = "preview-prior.png"
RECONSTRUCTION_PREVIEW = "preview-reconstructions.png"
PRIOR_SAMPLES = 64  # an 8×8 grid of prior samples
RECONSTRUCTIONS_PER_CLASS = 2


def write_model_card(folder: str | Path, trust_code: bool = False) -> Path:
    """A human-readable card beside the config: what the model is and how well it does
    (``trust_code``: the command line imports an adapter model, whose Python it may run)."""
    folder = Path(folder)
    write_previews(folder, trust_code)
    config = json.loads((folder / "config.json").read_text())
    lines = _summary_lines(folder, config) + _evaluation_lines(config)
    lines += _imputation_comparison(config)
    lines += _saia_comparison(folder, config)
    path = folder / "card.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _summary_lines(folder: Path, config: dict[str, Any]) -> list[str]:
    """Name, model, data, architecture, training and the command that rebuilds it."""
    model = config["config"]
    training = config.get("training", {})
    stages = training.get("stages", [])  # models trained in stages (Algorithm 1): all stages count
    steps = sum(s["steps"] for s in stages) if stages else training.get("settings", {}).get("steps", "?")
    seconds = round(sum(s["seconds"] for s in stages), 1) if stages else training.get("seconds", "?")
    dependency = model.get("dependency")  # mixed-type models: marginal VAEs + a dependency model
    architecture = model if dependency is None else dependency
    lines = [
        f"# {config['name']}",
        "",
        f"- model: `{config['model']}` ({config['model_class']}), latent dims {config['latent_dims']}",
        f"- dataset: `{config['dataset']['name']}` ({config['dataset']['n_train']} train / {config['dataset']['n_test']} test rows)",
    ]
    if dependency is not None:
        lines += _mixed_model_lines(config, model, dependency)
    lines += [
        f"- architecture: {architecture.get('architecture', 'mlp')}, hidden {architecture.get('hidden_dims', architecture.get('hidden_dim', '?'))}, "
        f"likelihood {architecture.get('likelihood', '?')}" + (f", β = {architecture['beta']}" if "beta" in architecture else ""),
        f"- trained: {steps} steps, seed {training.get('settings', {}).get('seed', '?')}, "
        f"{seconds} s on {training.get('device', '?')}",
        f"- rebuild: `{rebuild_command(folder, config)}`",
    ]
    for stage in stages:
        source = f", inherited from `{stage['source']}`" if stage.get("source") else ""
        lines.append(f"  - {stage['name']}: {stage['steps']} steps, {stage['seconds']} s{source}")
    return lines


def _mixed_model_lines(config: dict[str, Any], model: dict[str, Any], dependency: dict[str, Any]) -> list[str]:
    columns = ", ".join(f"{n} ({k})" for n, k in zip(model["column_names"], model["column_kinds"]))
    return [f"- marginal VAEs: one per column, 1-D latent, {model['marginal_hidden']} hidden units: {columns}",
            f"- dependency model on the {len(model['column_kinds'])} marginal codes: Gaussian decoder "
            f"(variance {round(dependency.get('sigma', 0) ** 2, 3)}), predictor of "
            f"`{config['dataset'].get('target_name') or 'y'}` ({dependency.get('target')})"]


def _evaluation_lines(config: dict[str, Any]) -> list[str]:
    evaluation = config.get("evaluation", {})
    unit = "feature" if config["config"].get("dependency") is not None else "pixel"
    lines = ["", "## Evaluation (test split, nats per data point"
             + (f"; missing_nll per missing {unit})" if "missing_nll" in evaluation else ")"),
             "", "| metric | value |", "|---|---|"]
    return lines + [f"| {k} | {v} |" for k, v in evaluation.items()]


def rebuild_command(folder: Path, config: dict[str, Any]) -> str:
    """A shipped model is rebuilt by name; any other by the train command that made it, with the
    paths inside the repository written relative to its root (the builder's absolute ``--out``
    means nothing on another machine)."""
    import shlex

    from vizvae.checkpoint import REPO_ROOT, SHIPPED_DIR, destination_of
    from vizvae.train.recipes import ALL_RECIPES

    folder = destination_of(folder)  # a card is written before its checkpoint is renamed into place
    if Path(folder).resolve().parent == SHIPPED_DIR.resolve() and Path(folder).name in ALL_RECIPES:
        return f"python -m vizvae rebuild --only {Path(folder).name}"
    command = (config.get("training") or {}).get("command", "")
    try:
        words = shlex.split(command)
    except ValueError:  # not a command line vizvae wrote: shown as it is
        return command
    root = REPO_ROOT.resolve()
    portable = [str(Path(word).relative_to(root)) if Path(word).is_absolute() and Path(word).is_relative_to(root)
                else word for word in words]
    return shlex.join(portable)


def _imputation_comparison(config: dict[str, Any]) -> list[str]:
    """Tables 5.3–5.5 analogue: every shipped model of the same data with imputation results."""
    from vizvae.checkpoint import shipped_checkpoints

    if "missing_nll" not in (config.get("evaluation") or {}):
        return []
    dataset = (config.get("dataset") or {}).get("name")
    rows = [info for info in shipped_checkpoints() if info.dataset == dataset and "missing_nll" in info.evaluation]
    if not rows:
        return []
    lines = ["", "## Imputation under the test-mask protocol, all shipped models of this data "
             "(`python -m vizvae evaluate MODEL --task imputation --json`)", "",
             "| model | missing_nll | target_nll | target_accuracy | sampler |", "|---|---|---|---|---|"]
    for info in rows:
        e = info.evaluation
        lines.append(f"| {info.name} | {e['missing_nll']} ± {e.get('missing_nll_std', '-')} | "
                     f"{e.get('target_nll', '-')} ± {e.get('target_nll_std', '-')} | "
                     f"{e.get('target_accuracy', '-')} | {e.get('imputation_sampler', '-')} |")
    return lines


def _saia_comparison(folder: Path, config: dict[str, Any]) -> list[str]:
    """Fig. 5.5 in numbers: the area under each strategy's error curve, for this model and every shipped
    model of the same table whose curves are cached (``saia.json``)."""
    from vizvae.checkpoint import shipped_checkpoints
    from vizvae.evaluation.saia import CACHE_FILE

    own = folder / CACHE_FILE
    if not own.is_file():
        return []
    dataset = (config.get("dataset") or {}).get("name")
    sources = {config["name"]: own}
    for info in shipped_checkpoints():
        if info.dataset == dataset and (Path(info.path) / CACHE_FILE).is_file():
            sources.setdefault(info.name, Path(info.path) / CACHE_FILE)
    lines = ["", "## Sequential feature acquisition, area under the error curve (smaller is better; "
             "`python -m vizvae evaluate MODEL --task saia --json`)", ""]
    header = None
    for name, file in sources.items():
        saia = json.loads(file.read_text())
        if header is None:
            header = list(saia["areas"])
            lines += [f"Error: {saia['error']}, mean over {saia['rows']} test rows, {saia['options']['samples']} draws "
                      "per step.", "", "| model | " + " | ".join(header) + " | error after 0 / 3 / all features (mi) |",
                      "|---|" + "---|" * (len(header) + 1)]
        curve = saia["curves"].get("mi", [])
        ends = " / ".join(str(round(curve[i], 3)) for i in (0, min(3, len(curve) - 1), len(curve) - 1)) if curve else "-"
        lines.append(f"| {name} | " + " | ".join(str(saia["areas"].get(k, "-")) for k in header) + f" | {ends} |")
    return lines


def write_previews(folder: str | Path, trust_code: bool = False) -> bool:
    """Store the seed-0 grids of an image model beside its checkpoint (and its layer summary in
    the config, for a card without weights); False for a table model, which has no grids."""
    from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, update_config

    folder = Path(folder)
    checkpoint = load_checkpoint(folder, device="cpu", trust_code=trust_code)
    update_config(folder, architecture=checkpoint.model.describe())
    described = checkpoint.config.get("dataset") or {}
    if described.get("kind") != "image" or not described.get("image_shape"):
        return False
    (folder / PRIOR_PREVIEW).write_bytes(prior_preview(checkpoint.model, tuple(described["image_shape"]), seed=0))
    png, rows = reconstruction_preview(checkpoint.model, checkpoint_dataset(checkpoint.config), seed=0)
    (folder / RECONSTRUCTION_PREVIEW).write_bytes(png)
    update_config(folder, previews={"seed": 0, "reconstruction_rows": rows})
    return True


def prior_preview(model: Any, image_shape: tuple[int, ...], seed: int = 0) -> bytes:
    """``PRIOR_SAMPLES`` decoder means of prior draws, reproducible from ``seed``, as a PNG grid."""
    from vizvae.inference.latent import prior_samples
    from vizvae.viz.card import prior_png

    return prior_png(prior_samples(model, PRIOR_SAMPLES, seed=seed), image_shape)


def reconstruction_preview(model: Any, dataset: Any, seed: int = 0) -> tuple[bytes, list[int]]:
    """Test images of every class above their reconstructions as a PNG grid, and the rows shown."""
    from vizvae.inference.latent import examples_per_class, reconstruct
    from vizvae.viz.card import reconstruction_png

    rows = examples_per_class(dataset.y_test, RECONSTRUCTIONS_PER_CLASS, seed=seed, n_rows=len(dataset.x_test))
    originals = dataset.x_test[rows]
    png = reconstruction_png(originals, reconstruct(model, originals), dataset.image_shape)
    return png, [int(r) for r in rows]


def stored_previews(folder: str | Path, config: dict[str, Any]) -> tuple[bytes, bytes, list[int]] | None:
    """(prior grid, reconstruction grid, rows) stored for seed 0, if they match the weights."""
    folder = Path(folder)
    previews = config.get("previews") or {}
    files = [folder / PRIOR_PREVIEW, folder / RECONSTRUCTION_PREVIEW]
    if previews.get("seed") != 0 or not all(f.is_file() for f in files):
        return None
    weights = folder / "model.safetensors"
    if weights.is_file() and any(f.stat().st_mtime < weights.stat().st_mtime - 1 for f in files):
        return None  # older than the weights: stale
    return files[0].read_bytes(), files[1].read_bytes(), list(previews.get("reconstruction_rows", []))
