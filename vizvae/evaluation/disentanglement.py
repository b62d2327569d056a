"""Disentanglement metrics against known generative factors (Peis §3.8.1; SPEC §1.6).

A representation is disentangled when each latent dimension captures at most one generative
factor and each factor is captured by one dimension (Eastwood & Williams 2018, as quoted by
Peis §3.8.1). Three measurements of that, as pure functions of numpy arrays:

* **MIG**, the mutual information gap (Chen et al. 2018): for every factor v_k, the gap between
  the two latents with the highest mutual information with it, normalised by its entropy,
  ``(I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k)``, averaged over factors. The latents (encoder
  means) are discretised into 20 equal-width bins per dimension, as in disentanglement_lib
  (Locatello et al. 2019), and I is the plug-in estimate from the joint histogram, in nats.
  1 when every factor lives in exactly one latent; ≈ 0 when no latent knows more about a factor
  than another (or none knows anything).
* **DCI** (Eastwood & Williams 2018): one gradient-boosted tree classifier per factor predicts
  the factor's level from all latents; its feature importances form the importance matrix R
  (latents × factors). *Disentanglement* = Σ_i ρ_i (1 − H_K(P_i·)), P_ij = R_ij / Σ_k R_ik,
  ρ_i = Σ_j R_ij / Σ R (entropy in base K = number of factors); *completeness* = Σ_j ρ̃_j
  (1 − H_D(R_·j / Σ_i R_ij)) (base D = number of latents; ρ̃_j = Σ_i R_ij / Σ R, uniform since each
  classifier's importances sum to 1, 0 for a constant factor); *informativeness* = mean
  held-out classification **accuracy** over factors (higher is better; Eastwood & Williams
  report the error, which is 1 − this).
* **Active units**: dimensions whose KL(q(z_j | x) ‖ N(0, 1)), averaged over the data, exceeds
  0.01 nats (``ACTIVE_KL_THRESHOLD``). The others carry no information about x: the decoder
  ignores them and a traversal of them changes nothing.

``measure_disentanglement`` runs all three on a model and a data set with factors (``shapes``);
``evaluate_disentanglement_task`` is ``python -m vizvae evaluate MODEL --task disentanglement``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIG_BINS = 20
ACTIVE_KL_THRESHOLD = 0.01  # nats
DCI_TREES = 50  # boosting stages per factor (and class); importances are stable well before this


# -- information ------------------------------------------------------------------------------------
def discretize(latents: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """Each column of (n, d) continuous latents cut into ``bins`` equal-width bins over its own
    range: int codes in [0, bins). A constant column falls into a single bin."""
    latents = np.asarray(latents, dtype=np.float64)
    codes = np.zeros(latents.shape, dtype=np.int64)
    for j in range(latents.shape[1]):
        column = latents[:, j]
        low, high = column.min(), column.max()
        if high > low:
            codes[:, j] = np.minimum(((column - low) / (high - low) * bins).astype(np.int64), bins - 1)
    return codes


def entropy(codes: np.ndarray) -> float:
    """Plug-in entropy (nats) of a discrete sample of int codes."""
    counts = np.unique(np.asarray(codes), return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(a; b) in nats of two paired samples of int codes, from their joint histogram
    (``sklearn.metrics.mutual_info_score``)."""
    from sklearn.metrics import mutual_info_score  # not at import: the app's pages load this module

    return float(mutual_info_score(np.ravel(a), np.ravel(b)))


def mutual_information_matrix(latent_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """I(z_j; v_k) in nats for discretised latents (n, d) and factor codes (n, K): (d, K)."""
    latent_codes, factors = np.asarray(latent_codes), np.asarray(factors)
    return np.array([[mutual_information(latent_codes[:, j], factors[:, k]) for k in range(factors.shape[1])]
                     for j in range(latent_codes.shape[1])])


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    factors = np.asarray(factors)
    return np.array([entropy(factors[:, k]) for k in range(factors.shape[1])])


def normalized_mutual_information(latents: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """I(z_j; v_k) / H(v_k): the fraction of factor k's entropy that latent j explains, (d, K)
    in [0, 1] (0 for a constant factor)."""
    mi = mutual_information_matrix(discretize(latents, bins), factors)
    h = factor_entropies(factors)
    return np.divide(mi, h, out=np.zeros_like(mi), where=h > 0)


# -- MIG -------------------------------------------------------------------------------------------------
@dataclass
class MIGScore:
    score: float  # mean over (non-constant) factors
    per_factor: np.ndarray  # (K,) normalised gap of each factor (nan for a constant factor)
    normalized_mi: np.ndarray  # (d, K) I(z_j; v_k) / H(v_k)


def mig(latents: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> MIGScore:
    """Mutual information gap (Chen et al. 2018) of latents (n, d) against factor codes (n, K)."""
    latents, factors = np.asarray(latents), np.asarray(factors)
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(f"expected latents (n, d) and factors (n, K), got {latents.shape} and {factors.shape}")
    normalized = normalized_mutual_information(latents, factors, bins)
    ranked = -np.sort(-normalized, axis=0)  # each column in decreasing order
    second = ranked[1] if len(ranked) > 1 else np.zeros(ranked.shape[1])
    per_factor = ranked[0] - second
    per_factor[factor_entropies(factors) == 0] = np.nan  # a constant factor has nothing to capture
    return MIGScore(float(np.nanmean(per_factor)), per_factor, normalized)


def best_factor_per_latent(normalized_mi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every latent, the factor it shares the most (normalised) information with, and that
    amount: (d,) factor indices, (d,) values in [0, 1]."""
    normalized_mi = np.asarray(normalized_mi)
    best = normalized_mi.argmax(axis=1)
    return best, normalized_mi[np.arange(len(best)), best]


# -- DCI -------------------------------------------------------------------------------------------------
@dataclass
class DCIScores:
    disentanglement: float
    completeness: float
    informativeness: float  # mean test accuracy over factors
    importance: np.ndarray  # (d, K) R_ij, each column sums to 1
    accuracy: np.ndarray  # (K,) held-out accuracy per factor


def _normalized_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of non-negative weights (normalised to sum 1), in log base ``base``."""
    p = np.asarray(p, dtype=np.float64)
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=1) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R (latents × factors)."""
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = importance.shape
    total = importance.sum()
    if total == 0:
        return 0.0, 0.0
    # each latent: how concentrated its importance is on one factor, weighted by how much it matters
    per_latent = 1.0 - _normalized_entropy(importance, k) if k > 1 else np.ones(d)
    weights = importance.sum(axis=1) / total
    disentanglement = float((weights * per_latent).sum())
    # each factor: how concentrated its importance is on one latent
    per_factor = 1.0 - _normalized_entropy(importance.T, d) if d > 1 else np.ones(k)
    factor_weights = importance.sum(axis=0) / total
    completeness = float((factor_weights * per_factor).sum())
    return disentanglement, completeness


def dci(latents_train: np.ndarray, factors_train: np.ndarray, latents_test: np.ndarray, factors_test: np.ndarray,
        seed: int = 0, n_estimators: int = DCI_TREES) -> DCIScores:
    """DCI (Eastwood & Williams 2018) with one ``GradientBoostingClassifier`` per factor, fitted
    on the train rows; informativeness is the mean accuracy on the test rows."""
    from sklearn.ensemble import GradientBoostingClassifier

    latents_train, latents_test = np.asarray(latents_train), np.asarray(latents_test)
    factors_train, factors_test = np.asarray(factors_train), np.asarray(factors_test)
    d, k = latents_train.shape[1], factors_train.shape[1]
    importance = np.zeros((d, k))
    accuracy = np.zeros(k)
    for j in range(k):
        if len(np.unique(factors_train[:, j])) < 2:
            accuracy[j] = 1.0  # a constant factor: nothing to predict, nothing to attribute
            continue
        classifier = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        classifier.fit(latents_train, factors_train[:, j])
        importance[:, j] = np.abs(classifier.feature_importances_)
        accuracy[j] = classifier.score(latents_test, factors_test[:, j])
    disentanglement, completeness = dci_from_importance(importance)
    return DCIScores(disentanglement, completeness, float(accuracy.mean()), importance, accuracy)


# -- active units ------------------------------------------------------------------------------------------
def active_units(average_kl: np.ndarray, threshold: float = ACTIVE_KL_THRESHOLD) -> int:
    """How many latent dimensions carry more than ``threshold`` nats of KL on average."""
    return int((np.asarray(average_kl) > threshold).sum())


# -- on a model ----------------------------------------------------------------------------------------------
@dataclass
class Disentanglement:
    """Everything the disentanglement page and the CLI show about one model."""

    factor_names: tuple[str, ...]
    mig: MIGScore
    average_kl: np.ndarray  # (d,) nats, averaged over all rows
    active_units: int
    dci: DCIScores | None = None

    def summary(self) -> dict[str, Any]:
        """The scalar metrics stored in config.json's ``evaluation`` (rounded)."""
        out: dict[str, Any] = {"mig": round(self.mig.score, 4)}
        if self.dci is not None:
            out.update(dci_disentanglement=round(self.dci.disentanglement, 4),
                       dci_completeness=round(self.dci.completeness, 4),
                       dci_informativeness=round(self.dci.informativeness, 4))
        out["active_units"] = self.active_units
        return out


def encode_means(model, x: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Encoder means (n, d) and per-dimension KL(q(z_j | x) ‖ N(0, 1)) (n, d) of every row."""
    from vizvae.inference.latent import encode_dataset

    encoded = encode_dataset(model, x, batch_size)
    return encoded.mean, encoded.kl_per_dimension


def measure_disentanglement(model, dataset, bins: int = MIG_BINS, seed: int = 0, with_dci: bool = True,
                            n_estimators: int = DCI_TREES) -> Disentanglement:
    """MIG and active units on all rows (train + test: the complete factor grid), DCI fitted on
    the train rows and scored on the test rows. Latents are the encoder means."""
    from vizvae.data.shapes import ground_truth_factors

    factors = ground_truth_factors(dataset)
    means_train, kl_train = encode_means(model, dataset.x_train)
    means_test, kl_test = encode_means(model, dataset.x_test)
    means = np.concatenate([means_train, means_test])
    codes = np.concatenate([factors.train, factors.test])
    average_kl = np.concatenate([kl_train, kl_test]).mean(axis=0)
    scores = Disentanglement(factors.names, mig(means, codes, bins), average_kl, active_units(average_kl))
    if with_dci:
        scores.dci = dci(means_train, factors.train, means_test, factors.test, seed=seed, n_estimators=n_estimators)
    return scores


INFORMATION = "disentanglement-information"  # the result's name in the checkpoint cache


def information_to_arrays(scores: Disentanglement) -> dict[str, np.ndarray]:
    return {"factor_names": np.array(scores.factor_names, dtype=str), "mig": np.array(scores.mig.score),
            "mig_per_factor": scores.mig.per_factor, "normalized_mi": scores.mig.normalized_mi,
            "average_kl": scores.average_kl, "active_units": np.array(scores.active_units)}


def information_from_arrays(arrays: dict[str, np.ndarray]) -> Disentanglement:
    mig_score = MIGScore(float(arrays["mig"]), arrays["mig_per_factor"], arrays["normalized_mi"])
    return Disentanglement(tuple(str(name) for name in arrays["factor_names"]), mig_score, arrays["average_kl"],
                           int(arrays["active_units"]))


def cached_information(folder, model, dataset, bins: int = MIG_BINS, *,
                       precomputed: bool = False) -> tuple[Disentanglement, bool]:
    """(``measure_disentanglement`` without DCI, read from a file?): MIG, the normalised mutual information of
    every latent with every factor, and the KL per latent, as shipped with the model (``python -m vizvae
    precompute``) or kept in its cache, else measured and stored. ``folder`` None: no cache."""
    from vizvae.inference import cache

    computed: list[Disentanglement] = []

    def compute() -> dict[str, np.ndarray]:
        computed.append(measure_disentanglement(model, dataset, bins=bins, with_dci=False))
        return information_to_arrays(computed[0])

    arrays, from_cache = cache.cached_arrays(folder, INFORMATION, {"bins": int(bins), "rows": "train+test"}, compute,
                                             precomputed=precomputed)
    return (computed[0] if computed else information_from_arrays(arrays)), from_cache


def evaluate_disentanglement_task(checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    """``python -m vizvae evaluate MODEL --task disentanglement [-o bins=20] [-o trees=50] [-o seed=0] [-o save=1]``.

    ``save=1`` also merges the scalar metrics into the checkpoint's config.json ``evaluation``
    (and the CLI then rewrites its card.md)."""
    from vizvae.evaluation import saves_results
    from vizvae.evaluation.bounds import dataset_for

    dataset = dataset_for(checkpoint)
    bins = int(options.get("bins") or MIG_BINS)
    scores = measure_disentanglement(checkpoint.model, dataset, bins=bins, seed=int(options.get("seed") or 0),
                                     n_estimators=int(options.get("trees") or DCI_TREES))
    summary = scores.summary()
    if saves_results(options):
        from vizvae.checkpoint import update_config

        update_config(checkpoint.path, evaluation=summary)
    return {
        "model": checkpoint.name, "dataset": dataset.name, "beta": checkpoint.config.get("config", {}).get("beta"),
        **summary,
        "active_kl_threshold_nats": ACTIVE_KL_THRESHOLD,
        "mig_bins": bins,
        "mig_per_factor": dict(zip(scores.factor_names, np.round(scores.mig.per_factor, 4).tolist())),
        "dci_accuracy_per_factor": dict(zip(scores.factor_names, np.round(scores.dci.accuracy, 4).tolist())),
        "average_kl": [round(float(v), 4) for v in scores.average_kl],
    }
