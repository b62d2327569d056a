"""Looking inside UG-VAE's global and local latent spaces (thesis §4.3): the numbers behind the
"Global & local" page and the ``batches`` evaluation.

* the Fig. 4.4 grid: rows move β, columns move z around the cluster's prior mean μ_z^(d)(β);
* clusters: one sample per cluster for a given β, and where q(d | z) puts the test set;
* structured batches (Fig. 4.8c, Table 4.2): the global posterior q(β | X) of batches built by
  a rule, its 2-D projection with uncertainty, and SVMs that tell batch kinds apart from
  samples of β;
* interpolation between two groups' β and two images' z (Fig. 4.7a/c).

Everything takes a model with UG-VAE's interface (``encode``, ``cluster_prior``,
``cluster_probs``, ``global_posterior``, ``decode_group(z, β)``) and returns arrays; no Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vizvae.data.batches import BatchRule, sample_batches
from vizvae.inference.latent import lerp
from vizvae.kernels.pca import principal_components
from vizvae.models.distributions import DiagonalGaussian


# -- paths through a latent space ---------------------------------------------------------------------
def diagonal_path(steps: int, span: float, dim: int, only: int | None = None) -> torch.Tensor:
    """``steps`` points from −span to +span: every dimension at once (the diagonal, as the
    thesis moves through the latent space), or only dimension ``only`` (the others stay 0).
    Returns (steps, dim)."""
    values = torch.linspace(-span, span, steps)
    if only is None:
        return values[:, None].expand(steps, dim).clone()
    path = torch.zeros(steps, dim)
    path[:, only] = values
    return path


# -- Fig. 4.4: global rows, local columns ------------------------------------------------------------
@dataclass
class GlobalLocalGrid:
    """The latent point behind every image of a grid."""

    z: torch.Tensor  # (rows, columns, dim_z)
    beta: torch.Tensor  # (rows, g)
    prior_mean: torch.Tensor  # (rows, dim_z): μ_z^(d)(β) of each row


@torch.inference_mode()
def global_local_grid(model, cluster: int, beta_rows: torch.Tensor, z_offsets: torch.Tensor) -> GlobalLocalGrid:
    """Row r fixes β = ``beta_rows[r]``; column c sets z = μ_z^(d)(β) + ``z_offsets[c]`` for
    cluster d (Fig. 4.4: β from −1 to +1, z from μ − 3 to μ + 3, both diagonally).
    beta_rows (rows, g), z_offsets (columns, dim_z)."""
    beta_rows = torch.as_tensor(beta_rows, dtype=torch.float32, device=model.device)
    z_offsets = torch.as_tensor(z_offsets, dtype=torch.float32, device=model.device)
    prior_mean = model.cluster_prior(beta_rows).mean[:, cluster]  # (rows, dim_z)
    return GlobalLocalGrid(prior_mean[:, None, :] + z_offsets[None], beta_rows, prior_mean)


@torch.inference_mode()
def decode_with_global(model, z: torch.Tensor, beta: torch.Tensor) -> np.ndarray:
    """Decoder means p(x | z, β): z (rows, columns, dim_z), β (rows, g) -> (rows, columns, features)."""
    z = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    beta = torch.as_tensor(beta, dtype=torch.float32, device=model.device)
    return model.decode_group(z, beta[:, None, :]).mean.float().cpu().numpy()


@torch.inference_mode()
def random_batch_centre(model, x: np.ndarray, n_batches: int = 20, batch_size: int | None = None, seed: int = 0
                        ) -> torch.Tensor:
    """The average posterior mean of q(β | X) over random batches of x: (g,). Random training
    groups all look alike, so their posteriors cluster around one point; when that point is far
    from the prior mean 0, prior draws of β land where the decoder was rarely trained."""
    batch_size = min(batch_size or model.config.group_size, len(x))
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.choice(len(x), size=batch_size, replace=False) for _ in range(n_batches)])
    return batch_global_posteriors(model, x, rows).mean.mean(0)


# -- clusters ------------------------------------------------------------------------------------------
@torch.inference_mode()
def cluster_samples(model, beta: torch.Tensor, n: int = 1, seed: int = 0) -> torch.Tensor:
    """z for every cluster at a fixed β: the prior mean μ_z^(d)(β) first, then ``n − 1`` draws
    of N(μ_z^(d)(β), Σ_z^(d)(β)). Returns (K, n, dim_z)."""
    beta = torch.as_tensor(beta, dtype=torch.float32, device=model.device)
    prior = model.cluster_prior(beta)  # (K, dz)
    if n <= 1:
        return prior.mean[:, None]
    generator = torch.Generator(device=model.device).manual_seed(seed)
    draws = prior.rsample(n - 1, generator).transpose(0, 1)  # (K, n − 1, dz)
    return torch.cat([prior.mean[:, None], draws], 1)


@dataclass
class ClusterAssignments:
    probs: np.ndarray  # (n, K) q(d | z) at the encoder mean
    assignment: np.ndarray  # (n,) argmax_d

    def label_counts(self, labels: np.ndarray, n_labels: int = 10) -> np.ndarray:
        """(K, n_labels): how many rows of each label each cluster takes."""
        counts = np.zeros((self.probs.shape[1], n_labels), dtype=np.int64)
        np.add.at(counts, (self.assignment, np.asarray(labels).astype(int)), 1)
        return counts


@torch.inference_mode()
def assign_clusters(model, x: np.ndarray, batch_size: int = 1000) -> ClusterAssignments:
    """q(d | z) of every row at z = its encoder mean (eq. 4.7)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)
    probs = torch.cat([model.cluster_probs(model.encode(x[i:i + batch_size]).mean).cpu()
                       for i in range(0, len(x), batch_size)]).numpy()
    return ClusterAssignments(probs, probs.argmax(1))


def cluster_purity(counts: np.ndarray) -> float:
    """Fraction of rows whose cluster's majority label is their own label."""
    total = counts.sum()
    return float(counts.max(1).sum() / total) if total else 0.0


# -- structured batches (§4.3.3) ----------------------------------------------------------------------------
@torch.inference_mode()
def batch_global_posteriors(model, x: np.ndarray, batches: np.ndarray, chunk: int = 64) -> DiagonalGaussian:
    """q(β | X_b, Z_b) of every batch (rows ``batches[b]`` of x), Z at the encoder means:
    mean and std (n_batches, g)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)
    index = torch.as_tensor(np.asarray(batches), dtype=torch.long, device=model.device)
    means, stds = [], []
    for start in range(0, len(index), chunk):
        posterior = model.global_posterior(x[index[start:start + chunk]])  # groups (chunk, B, features)
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    return DiagonalGaussian(torch.cat(means), torch.cat(stds))


@dataclass
class BatchPosteriors:
    """Global posteriors of batches of several kinds."""

    rules: list[BatchRule]
    kinds: np.ndarray  # (n_batches,) index into rules
    rows: np.ndarray  # (n_batches, B) row indices
    mean: np.ndarray  # (n_batches, g)
    std: np.ndarray  # (n_batches, g)

    def samples(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws of β from every batch's posterior, flattened for a classifier:
        features (n_batches·n, g) and the batch kind of each (n_batches·n,)."""
        rng = np.random.default_rng(seed)
        draws = self.mean[:, None] + self.std[:, None] * rng.standard_normal((len(self.mean), n, self.mean.shape[1]))
        return draws.reshape(-1, self.mean.shape[1]), np.repeat(self.kinds, n)


def structured_batch_posteriors(model, x: np.ndarray, labels: np.ndarray, rules: Sequence[BatchRule],
                                n_batches: int, batch_size: int, seed: int = 0,
                                domains: np.ndarray | None = None) -> BatchPosteriors:
    """``n_batches`` batches of each rule drawn from (x, labels) and their global posteriors."""
    rng = np.random.default_rng(seed)
    rows = [sample_batches(labels, rule, n_batches, batch_size, rng, domains) for rule in rules]
    all_rows = np.concatenate(rows)
    posterior = batch_global_posteriors(model, x, all_rows)
    kinds = np.repeat(np.arange(len(rules)), n_batches)
    return BatchPosteriors(list(rules), kinds, all_rows, posterior.mean.numpy(), posterior.std.numpy())


@dataclass
class SVMAccuracy:
    classifier: str  # "linear" | "rbf"
    train_accuracy: float
    test_accuracy: float


def svm_accuracies(train_features: np.ndarray, train_kinds: np.ndarray, test_features: np.ndarray,
                   test_kinds: np.ndarray, seed: int = 0) -> list[SVMAccuracy]:
    """A linear and an RBF SVM (standardised inputs) fitted on β samples of the training
    batches and scored on those of held-out batches (Table 4.2)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    results = []
    for kernel in ("linear", "rbf"):
        svm = make_pipeline(StandardScaler(), SVC(kernel=kernel, C=1.0, gamma="scale", random_state=seed))
        svm.fit(train_features, train_kinds)
        results.append(SVMAccuracy(kernel, float(svm.score(train_features, train_kinds)),
                                   float(svm.score(test_features, test_kinds))))
    return results


@dataclass
class BatchProblem:
    """One row group of Table 4.2: which batch kinds a classifier must tell apart."""

    name: str  # e.g. "even_vs_odd"
    rules: list[BatchRule]

    @property
    def label(self) -> str:
        return " vs ".join(f"{rule.short_label} ({i})" for i, rule in enumerate(self.rules))


def batch_classification(model, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                         problems: Sequence[BatchProblem], n_train_batches: int = 100, n_test_batches: int = 50,
                         batch_size: int = 128, samples_per_batch: int = 5, seed: int = 0,
                         train_domains: np.ndarray | None = None, test_domains: np.ndarray | None = None,
                         ) -> dict[str, list[SVMAccuracy]]:
    """Table 4.2 on MNIST: for every problem, SVMs on β samples of ``n_train_batches`` batches
    per kind drawn from ``train`` (images, labels), scored on ``n_test_batches`` per kind drawn
    from the held-out ``test`` images. Returns problem name -> [linear, rbf]."""
    results = {}
    for offset, problem in enumerate(problems):
        fitted = structured_batch_posteriors(model, *train, problem.rules, n_train_batches, batch_size,
                                             seed=seed + 1000 * offset, domains=train_domains)
        held_out = structured_batch_posteriors(model, *test, problem.rules, n_test_batches, batch_size,
                                               seed=seed + 1000 * offset + 1, domains=test_domains)
        train_features, train_kinds = fitted.samples(samples_per_batch, seed)
        test_features, test_kinds = held_out.samples(samples_per_batch, seed + 1)
        results[problem.name] = svm_accuracies(train_features, train_kinds, test_features, test_kinds, seed)
    return results


# -- 2-D views of the global posterior ------------------------------------------------------------------------
@dataclass
class ProjectedPosteriors:
    coords: np.ndarray  # (n, 2) projected posterior means
    covariances: np.ndarray | None  # (n, 2, 2) projected posterior covariances (linear methods only)
    explained_variance_ratio: np.ndarray | None = None


def pca_posteriors(mean: np.ndarray, std: np.ndarray) -> ProjectedPosteriors:
    """Project posterior means onto their first two principal axes W (g, 2); a Gaussian's
    covariance maps exactly to Wᵀ diag(σ²) W, so uncertainty survives the projection."""
    components = principal_components(mean, 2)
    axes = components.axes.T  # (g, 2)
    covariances = np.einsum("gi,ng,gj->nij", axes, np.asarray(std, dtype=np.float64) ** 2, axes)
    return ProjectedPosteriors(components.scores(mean), covariances, components.explained_variance_ratio)


def nonlinear_posteriors(mean: np.ndarray, method: str, seed: int = 0) -> ProjectedPosteriors:
    """t-SNE or UMAP of the posterior means (imported only when asked for; no uncertainty)."""
    from vizvae.inference.projection import project

    return ProjectedPosteriors(project(np.asarray(mean, dtype=np.float32), method, seed=seed).coords.astype(np.float64),
                               None)


# -- Fig. 4.7: interpolating groups and images ---------------------------------------------------------------------
@torch.inference_mode()
def interpolation_grid(model, beta_start: torch.Tensor, beta_end: torch.Tensor, z_start: torch.Tensor,
                       z_end: torch.Tensor, steps: int) -> GlobalLocalGrid:
    """Rows go from β_1 to β_2 (two groups' posterior means), columns from z_1 to z_2 (two
    images' encoder means); d plays no part (Fig. 4.7's footnote)."""
    betas = lerp(torch.as_tensor(beta_start, dtype=torch.float32), torch.as_tensor(beta_end, dtype=torch.float32), steps)
    zs = lerp(torch.as_tensor(z_start, dtype=torch.float32), torch.as_tensor(z_end, dtype=torch.float32), steps)
    return GlobalLocalGrid(zs[None].expand(steps, -1, -1).to(model.device), betas.to(model.device),
                           zs[:1].expand(steps, -1).to(model.device))


@torch.inference_mode()
def group_and_image_latents(model, x: np.ndarray, group_rows: np.ndarray, image_row: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(posterior mean of β for the group, encoder mean of z for the image)."""
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device)
    beta = model.global_posterior(x_t[torch.as_tensor(np.asarray(group_rows), dtype=torch.long)]).mean
    z = model.encode(x_t[int(image_row)][None]).mean[0]
    return beta, z
