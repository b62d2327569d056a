"""The numbers behind the figures as tables, for display and CSV downloads: pandas frames, or plain
rows (lists of dicts) where a page that must draw fast needs no pandas (the Model page, the app's
first)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

EVALUATION_METRICS = {
    "test_elbo": "test ELBO (nats)",
    "test_iwae_5": "test IWAE bound, K = 5 (nats)",
    "test_iwae_50": "test IWAE bound, K = 50 (nats)",
    "n_test": "test rows",
    "missing_nll": "NLL of the missing entries (nats per missing {unit})",
    "target_nll": "NLL of the target, −log p(y | x_O)",
    "target_accuracy": "target accuracy (argmax of p(y | x_O))",
    "imputation_rows": "imputation: test rows",
    "imputation_samples": "imputation: posterior draws per row",
    "imputation_seeds": "imputation: mask seeds",
    "imputation_sampler": "imputation: posterior sampler",
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness",
    "active_units": "active latent units",
    "test_accuracy": "test accuracy",
    "test_accuracy_binarised": "test accuracy (binarised images)",
}
STD_SUFFIX = "_std"  # ``missing_nll_std``: the standard deviation of ``missing_nll`` over the mask seeds


def evaluation_rows(evaluation: dict[str, Any], unit: str = "pixel") -> list[dict[str, str]]:
    """config.json's ``evaluation`` section, one metric per row with a readable name; a metric with a
    ``*_std`` partner (over mask seeds) reads "mean ± std" on one row. ``unit`` is what an imputation
    NLL is per: "pixel" or "feature"."""
    rows = []
    for key, value in evaluation.items():
        if key.endswith(STD_SUFFIX) and key[:-len(STD_SUFFIX)] in evaluation:
            continue
        # values as text: one column may mix numbers, names and lists (mask seeds), which Arrow cannot hold
        text = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        spread = evaluation.get(key + STD_SUFFIX)
        if spread is not None and len(evaluation.get("imputation_seeds") or ()) != 1:
            text = f"{text} ± {spread}"
        rows.append({"metric": EVALUATION_METRICS.get(key, key.replace("_", " ")).format(unit=unit), "value": text})
    return rows


def evaluation_table(evaluation: dict[str, Any], unit: str = "pixel") -> pd.DataFrame:
    """``evaluation_rows`` as a frame (columns metric, value)."""
    import pandas as pd

    return pd.DataFrame(evaluation_rows(evaluation, unit), columns=["metric", "value"])


def evaluation_caption(evaluation: dict[str, Any], unit: str = "pixel") -> str:
    """What the evaluation table holds, one sentence per kind of result it has."""
    parts = []
    if "test_elbo" in evaluation:
        parts.append("ELBO and IWAE_K: lower bounds on log p(x) per test row, in nats; the IWAE bound tightens as "
                     "K grows (Burda et al. 2016).")
    if "missing_nll" in evaluation:
        seeds = evaluation.get("imputation_seeds") or []
        parts.append(f"Imputation (thesis §5.4 protocol): each {unit} hidden with probability 0.5 and the target "
                     f"always hidden, on {evaluation.get('imputation_rows', '?')} test rows"
                     + (f", mean ± std over {len(seeds)} mask seeds" if len(seeds) > 1 else "") + "; lower NLL is better."
                     + (" The NLL of a real target is in the model's standardised units." if unit == "feature"
                        and "target_nll" in evaluation else ""))
    if "mig" in evaluation:
        parts.append("Disentanglement against the known factors (MIG, DCI; 1 is best); active units: latent "
                     "dimensions with average KL above the threshold.")
    return " ".join(parts)


def column_rows(names: Sequence[str], kinds: Sequence[str], n_categories: Sequence[int], target_name: str | None,
                target_kind: str | None) -> list[dict[str, str]]:
    """A mixed-type model's columns: name, likelihood, number of values (discrete ones); the target last."""
    rows = [{"column": n, "likelihood": k, "values": str(c) if c else "real", "role": "feature"}
            for n, k, c in zip(names, kinds, n_categories)]
    if target_name:
        rows.append({"column": target_name, "likelihood": target_kind or "?", "values": "", "role": "target (predictor)"})
    return rows


def column_table(names: Sequence[str], kinds: Sequence[str], n_categories: Sequence[int], target_name: str | None,
                 target_kind: str | None) -> pd.DataFrame:
    """``column_rows`` as a frame (columns column, likelihood, values, role)."""
    import pandas as pd

    return pd.DataFrame(column_rows(names, kinds, n_categories, target_name, target_kind),
                        columns=["column", "likelihood", "values", "role"])


def history_rows(history: dict[str, Sequence[float]]) -> list[dict[str, Any]]:
    """Training history as one row per logged step, with the test ELBO where it was evaluated (a step
    evaluated but not logged gets a row of its own; rows in step order)."""
    rows = {int(step): {"step": int(step), "loss": loss, "train_elbo": elbo, "test_elbo": None}
            for step, loss, elbo in zip(history.get("step", []), history.get("loss", []),
                                        history.get("train_elbo", []))}
    for step, elbo in zip(history.get("eval_step") or [], history.get("test_elbo") or []):
        rows.setdefault(int(step), {"step": int(step), "loss": None, "train_elbo": None, "test_elbo": None})
        rows[int(step)]["test_elbo"] = elbo
    keep_test = bool(history.get("eval_step"))
    return [{k: v for k, v in row.items() if keep_test or k != "test_elbo"} for _, row in sorted(rows.items())]


def history_table(history: dict[str, Sequence[float]]) -> pd.DataFrame:
    """``history_rows`` as a frame."""
    import pandas as pd

    return pd.DataFrame(history_rows(history), columns=["step", "loss", "train_elbo"]
                        + (["test_elbo"] if history.get("eval_step") else []))


def projection_table(coords: np.ndarray, labels: Sequence[str] | None, method: str) -> pd.DataFrame:
    import pandas as pd

    table = pd.DataFrame({"index": np.arange(len(coords)), f"{method}_1": coords[:, 0], f"{method}_2": coords[:, 1]})
    if labels is not None:
        table.insert(1, "label", list(labels))
    return table


def posterior_table(indices: Sequence[int], mean: np.ndarray, std: np.ndarray) -> pd.DataFrame:
    """Encoder mean and std of the given rows, one row per (point, dimension)."""
    import pandas as pd

    mean, std = np.atleast_2d(mean), np.atleast_2d(std)
    records = [{"index": int(i), "dimension": j, "mean": float(mean[r, j]), "std": float(std[r, j])}
               for r, i in enumerate(indices) for j in range(mean.shape[1])]
    return pd.DataFrame(records, columns=["index", "dimension", "mean", "std"])


def traversal_table(latents: np.ndarray, dims_order: Sequence[int]) -> pd.DataFrame:
    """The latent point behind every cell of a traversal grid (rows, columns, latent)."""
    import pandas as pd

    latents = np.asarray(latents)
    records = []
    for r, dim in enumerate(dims_order):
        for c in range(latents.shape[1]):
            records.append({"row": r, "column": c, "varied_dimension": int(dim), "value": float(latents[r, c, dim]),
                            **{f"z{j}": float(v) for j, v in enumerate(latents[r, c])}})
    return pd.DataFrame(records)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def neutral_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=cmd|' /C calc'!A0``, ``+HYPERLINK(...)``,
    ``@SUM(...)``) gets a leading apostrophe, so it is shown as text; numbers and other text pass as
    they are (a negative number in a numeric column is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(table: pd.DataFrame | Sequence[dict[str, Any]]) -> bytes:
    """A table (a frame, or rows as dicts: the first row's keys are the columns) as the bytes of a CSV
    download, every text cell and column name neutralised (``neutral_cell``), lines ended by CRLF so
    that a cell holding CR or LF is quoted: the one door every CSV the pages offer goes through."""
    if not hasattr(table, "to_csv"):
        return _rows_csv(list(table))
    import pandas as pd

    table = table.copy()
    table.columns = [neutral_cell(str(name)) for name in table.columns]
    for name in table.columns:
        if not (pd.api.types.is_numeric_dtype(table[name]) or pd.api.types.is_bool_dtype(table[name])):
            table[name] = table[name].map(neutral_cell)
    return table.to_csv(index=False, lineterminator="\r\n").encode()  # RFC 4180: a lone CR in a cell is quoted


def _rows_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows as CSV without pandas, written as pandas writes a frame: empty for None, floats by repr."""
    import csv
    import io

    columns = list(rows[0]) if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutral_cell(str(c)) for c in columns])
    for row in rows:
        writer.writerow(["" if row.get(c) is None else neutral_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def markdown_table(rows: Sequence[dict[str, Any]], escape: Any = str) -> str:
    """Rows as a GitHub-flavoured markdown table (``st.markdown`` draws it without pandas); every cell
    and header goes through ``escape`` (the pages pass their plain-text escaping: a value from a
    config is shown as typed) and ``|`` is escaped so a cell cannot open another column."""
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value: Any) -> str:
        text = escape("" if value is None else str(value)).replace("\n", " ")
        return re.sub(r"(?<!\\)\|", r"\\|", text)  # a pipe the escaping left bare

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def interpolation_table(paths: dict[str, np.ndarray]) -> pd.DataFrame:
    """Latent points along named paths, e.g. {"linear": (steps, latent), "spherical": ...}."""
    import pandas as pd

    records = []
    for name, path in paths.items():
        path = np.asarray(path)
        for step, z in enumerate(path):
            t = step / max(1, len(path) - 1)
            records.append({"path": name, "step": step, "t": t, **{f"z{j}": float(v) for j, v in enumerate(z)}})
    return pd.DataFrame(records)


def shown_change(change: float, decimals: int = 2) -> str | None:
    """A metric's change as shown beside it ("+0.12"), or None when it rounds to zero at the
    ``decimals`` shown: a change of −0.004 printed as "−0.00" reads as a loss that is not there."""
    text = f"{change:+.{decimals}f}"
    return None if float(text) == 0 else text
