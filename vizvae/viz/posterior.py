"""Figures and tables for one data point's posterior (thesis Fig. 5.1b; Cremer et al. 2018) and for
the HMC lab on toy targets (Figs 5.7–5.8). Arrays in, plotly figures or pandas tables out; no
Streamlit, no torch.

Colours are fixed across figures: the true posterior in blue contours, the encoder q_φ in orange,
the inflated initial proposal dashed orange, q* purple, HMC samples green.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vizvae.viz.figures import apply_layout, panel_axes, subplot_grid
from vizvae.viz.global_local import ellipse_points

Limits = tuple[tuple[float, float], tuple[float, float]]

POSTERIOR_COLOUR = "#1F4E99"
ENCODER_COLOUR = "#E07B00"
BEST_COLOUR = "#8E44AD"
HMC_COLOUR = "#00A36C"
REJECTED_COLOUR = "#F0A202"
DIVERGENT_COLOUR = "#D62728"
PATH_COLOUR = "rgba(80, 80, 80, 0.35)"
OPTIMAL_ACCEPTANCE = 0.65  # Neal (2011); the thesis' Fig. 5.8 target


def _ellipse_trace(mean: np.ndarray, covariance: np.ndarray, name: str, colour: str, dash: str = "solid",
                   radius: float = 2.0) -> go.Scatter:
    points = ellipse_points(mean, covariance, radius)
    return go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines", name=name, hoverinfo="skip",
                      line=dict(color=colour, width=2, dash=dash))


def _contour_trace(z1: np.ndarray, z2: np.ndarray, density: np.ndarray, name: str) -> go.Contour:
    return go.Contour(x=z1, y=z2, z=density, name=name, showlegend=True, showscale=False, ncontours=10,
                      contours=dict(coloring="lines"), colorscale=[[0, "#9DB9E3"], [1, POSTERIOR_COLOUR]],
                      line=dict(width=1.5), hoverinfo="skip")


def posterior_plane_figure(chain: np.ndarray, step: int, encoder: tuple[np.ndarray, np.ndarray],
                           proposal: tuple[np.ndarray, np.ndarray] | None = None,
                           contours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                           best: tuple[np.ndarray, np.ndarray] | None = None,
                           accepted: np.ndarray | None = None, divergent: np.ndarray | None = None,
                           limits: Limits | None = None, axis_titles: tuple[str, str] = ("z0", "z1"),
                           title: str | None = None) -> go.Figure:
    """Fig. 5.1b with a chain stepper: where HMC's chains are after ``step`` of T transitions.

    ``chain`` (T+1, chains, 2) in plane coordinates; ``encoder``, ``proposal``, ``best`` are
    (mean (2,), covariance (2, 2)) drawn as 2σ ellipses; ``contours`` (z1 (n,), z2 (n,), density
    (n, n), rows z2) of the normalised posterior; ``accepted`` / ``divergent`` (T, chains) colour
    each chain by what its last transition did. ``limits`` fixes the axes so that stepping
    through t moves the points, not the frame.
    """
    chain = np.asarray(chain, dtype=float)
    n_steps = chain.shape[0] - 1
    step = int(np.clip(step, 0, n_steps))
    fig = go.Figure()
    if contours is not None:
        fig.add_trace(_contour_trace(*contours, name="p(z | x) (exact)"))
    fig.add_trace(_ellipse_trace(*encoder, name="encoder q_φ(z | x), 2σ", colour=ENCODER_COLOUR))
    if proposal is not None:
        fig.add_trace(_ellipse_trace(*proposal, name="initial proposal N(μ, s·σ), 2σ", colour=ENCODER_COLOUR,
                                     dash="dash"))
    if best is not None:
        fig.add_trace(_ellipse_trace(*best, name="best Gaussian q*, 2σ", colour=BEST_COLOUR, dash="dot"))
    if step > 0:  # each chain's path so far, one trace with gaps between chains
        paths = chain[: step + 1].transpose(1, 0, 2)  # (chains, step+1, 2)
        gap = np.full((paths.shape[0], 1, 2), np.nan)
        flat = np.concatenate([paths, gap], axis=1).reshape(-1, 2)
        fig.add_trace(go.Scatter(x=flat[:, 0], y=flat[:, 1], mode="lines", name=f"paths, t = 0…{step}",
                                 line=dict(color=PATH_COLOUR, width=1), hoverinfo="skip", connectgaps=False))
    fig.add_trace(go.Scatter(x=chain[0, :, 0], y=chain[0, :, 1], mode="markers", name="start (t = 0)",
                             marker=dict(size=5, color="rgba(0,0,0,0)", line=dict(width=1, color="#777777")),
                             hoverinfo="skip"))
    current = chain[step]
    if step > 0 and accepted is not None:
        took = np.asarray(accepted)[step - 1].astype(bool)
        broke = np.zeros_like(took) if divergent is None else np.asarray(divergent)[step - 1].astype(bool)
        colours = np.where(broke, DIVERGENT_COLOUR, np.where(took, HMC_COLOUR, REJECTED_COLOUR))
        status = np.where(broke, "divergent (rejected)", np.where(took, "accepted", "rejected"))
    else:
        colours = np.full(len(current), HMC_COLOUR)
        status = np.full(len(current), "draw from the proposal" if step == 0 else "")
    fig.add_trace(go.Scatter(
        x=current[:, 0], y=current[:, 1], mode="markers", name=f"chains at t = {step}",
        marker=dict(size=8, color=colours, line=dict(width=0.5, color="white")),
        customdata=np.stack([np.arange(len(current)).astype(object), status.astype(object)], axis=1),
        hovertemplate="chain %{customdata[0]}: %{customdata[1]}<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
    ))
    if limits is not None:
        fig.update_xaxes(range=list(limits[0]))
        fig.update_yaxes(range=list(limits[1]))
    fig.update_xaxes(title_text=axis_titles[0])
    fig.update_yaxes(title_text=axis_titles[1])
    fig.update_layout(legend=dict(orientation="h", y=-0.18), uirevision="posterior-plane")
    return apply_layout(fig, title, 560)


def _normal_pdf(grid: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def marginals_figure(samples: np.ndarray, encoder_mean: np.ndarray, encoder_std: np.ndarray,
                     dims: Sequence[int], exact: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
                     best: tuple[np.ndarray, np.ndarray] | None = None, columns: int = 5,
                     title: str | None = None) -> go.Figure:
    """Per-dimension marginals: a histogram of the HMC samples (n, dim) against the encoder's
    Gaussian (and q*'s, and the exact marginal (grid, density) where known), one panel per dim."""
    samples = np.asarray(samples, dtype=float)
    dims = list(dims)
    columns = max(1, min(columns, len(dims)))
    rows = int(np.ceil(len(dims) / columns))
    panel = 170  # pixels per row of panels, of which ~50 go to the tick labels and the next row's title
    layout = subplot_grid(rows, columns, [f"z{d}" for d in dims], horizontal_spacing=0.04,
                          vertical_spacing=min(0.3, 50 / (panel * rows)), y_tick_labels=False)
    traces = []
    for i, d in enumerate(dims):
        axes, first = panel_axes(i), i == 0
        values = samples[:, d]
        low = min(values.min(), encoder_mean[d] - 3 * encoder_std[d])
        high = max(values.max(), encoder_mean[d] + 3 * encoder_std[d])
        grid = np.linspace(low, high, 200)
        traces.append(go.Histogram(x=values, histnorm="probability density", nbinsx=25, name="HMC samples",
                                   marker_color=HMC_COLOUR, opacity=0.55, legendgroup="hmc", showlegend=first, **axes))
        traces.append(go.Scatter(x=grid, y=_normal_pdf(grid, encoder_mean[d], encoder_std[d]), mode="lines",
                                 name="encoder q_φ", line=dict(color=ENCODER_COLOUR, width=2), legendgroup="enc",
                                 showlegend=first, hoverinfo="skip", **axes))
        if best is not None:
            traces.append(go.Scatter(x=grid, y=_normal_pdf(grid, best[0][d], best[1][d]), mode="lines", name="q*",
                                     line=dict(color=BEST_COLOUR, width=2, dash="dot"), legendgroup="best",
                                     showlegend=first, hoverinfo="skip", **axes))
        if exact is not None and d in exact:
            x, density = exact[d]
            traces.append(go.Scatter(x=x, y=density, mode="lines", name="exact p(z_d | x)", legendgroup="exact",
                                     line=dict(color=POSTERIOR_COLOUR, width=2), showlegend=first, hoverinfo="skip",
                                     **axes))
    fig = go.Figure(data=traces, layout=layout)
    # the legend above the panels, in pixels, so it never meets the tick labels whatever the rows
    fig.update_layout(barmode="overlay", legend=dict(orientation="h", yref="container", y=1.0, yanchor="top",
                                                     x=0.0, xanchor="left"))
    apply_layout(fig, title, 70 + panel * rows)
    fig.update_layout(margin=dict(t=90 if title else 70))
    return fig


def corner_figure(samples: np.ndarray, encoder_mean: np.ndarray, encoder_std: np.ndarray, dims: Sequence[int],
                  title: str | None = None) -> go.Figure:
    """A small corner plot of a few latent dims: HMC samples pairwise below the diagonal with the
    encoder's 2σ ellipse, histograms on the diagonal."""
    samples = np.asarray(samples, dtype=float)
    dims = list(dims)
    k = len(dims)
    layout = subplot_grid(k, k, [""] * (k * k), horizontal_spacing=0.02, vertical_spacing=0.02, y_tick_labels=False)
    del layout["annotations"]
    traces = []
    for i, di in enumerate(dims):
        for j, dj in enumerate(dims):
            axes = panel_axes(i * k + j)
            layout[f"xaxis{axes['xaxis'][1:]}"]["showticklabels"] = False
            if j > i:
                continue
            first = i == 1 and j == 0
            if i == j:
                traces.append(go.Histogram(x=samples[:, di], nbinsx=20, marker_color=HMC_COLOUR, opacity=0.7,
                                           showlegend=False, hoverinfo="skip", **axes))
                continue
            traces.append(go.Scatter(x=samples[:, dj], y=samples[:, di], mode="markers", name="HMC samples",
                                     marker=dict(size=4, color=HMC_COLOUR, opacity=0.6), showlegend=first,
                                     legendgroup="hmc", hoverinfo="skip", **axes))
            covariance = np.diag([encoder_std[dj] ** 2, encoder_std[di] ** 2])
            points = ellipse_points(np.array([encoder_mean[dj], encoder_mean[di]]), covariance)
            traces.append(go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines", name="encoder q_φ, 2σ",
                                     line=dict(color=ENCODER_COLOUR, width=1.5), showlegend=first,
                                     legendgroup="enc", hoverinfo="skip", **axes))
        layout[f"xaxis{panel_axes((k - 1) * k + i)['xaxis'][1:]}"]["title"] = dict(text=f"z{di}")  # bottom row
        if i > 0:
            layout[f"yaxis{panel_axes(i * k)['yaxis'][1:]}"]["title"] = dict(text=f"z{di}")  # first column
    # the panels above the diagonal stay empty; hide their axes
    for i in range(k):
        for j in range(i + 1, k):
            axes = panel_axes(i * k + j)
            layout[f"xaxis{axes['xaxis'][1:]}"]["visible"] = False
            layout[f"yaxis{axes['yaxis'][1:]}"]["visible"] = False
    fig = go.Figure(data=traces, layout=layout)
    fig.update_layout(legend=dict(orientation="h", y=-0.08))
    return apply_layout(fig, title, 120 + 150 * k)


def acceptance_figure(acceptance: np.ndarray, divergences: np.ndarray, title: str | None = None) -> go.Figure:
    """Per transition t = 1…T: every chain's acceptance probability (dots), their mean (line), and the
    number of divergent chains (red bars, right axis). The dotted line is the optimal 0.65."""
    from plotly.subplots import make_subplots

    acceptance = np.asarray(acceptance, dtype=float)  # (T, chains)
    divergences = np.asarray(divergences).astype(int)
    n_steps, n_chains = acceptance.shape
    steps = np.arange(1, n_steps + 1)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    jitter = (np.random.default_rng(0).random((n_steps, n_chains)) - 0.5) * 0.3
    fig.add_trace(go.Bar(x=steps, y=divergences.sum(1), name="divergent chains", marker_color=DIVERGENT_COLOUR,
                         opacity=0.35, hovertemplate="t = %{x}: %{y} divergent<extra></extra>"), secondary_y=True)
    fig.add_trace(go.Scatter(x=(steps[:, None] + jitter).ravel(), y=acceptance.ravel(), mode="markers",
                             name="each chain", marker=dict(size=4, color=HMC_COLOUR, opacity=0.35),
                             hoverinfo="skip"), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=acceptance.mean(1), mode="lines+markers", name="mean over chains",
                             line=dict(color="#111111", width=2),
                             hovertemplate="t = %{x}: mean %{y:.2f}<extra></extra>"), secondary_y=False)
    fig.add_hline(y=OPTIMAL_ACCEPTANCE, line=dict(dash="dot", color="grey", width=1))
    fig.update_xaxes(title_text="transition t", dtick=1)
    fig.update_yaxes(title_text="acceptance probability", range=[-0.02, 1.02], secondary_y=False)
    fig.update_yaxes(title_text="divergent chains", range=[0, max(1, n_chains)], secondary_y=True, showgrid=False,
                     tickmode="auto", nticks=5, tickformat="d")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return apply_layout(fig, title, 340)


def step_size_heatmap(step_sizes: np.ndarray, title: str | None = None) -> go.Figure:
    """φ ∈ R^{T×dim}: one step size per transition (rows) and latent dimension (columns)."""
    step_sizes = np.asarray(step_sizes, dtype=float)
    n_steps, dim = step_sizes.shape
    fig = go.Figure(go.Heatmap(
        z=step_sizes, x=[f"z{d}" for d in range(dim)], y=list(range(1, n_steps + 1)), colorscale="Viridis",
        colorbar=dict(title="φ"), hovertemplate="t = %{y}, %{x}: φ = %{z:.4f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="latent dimension", type="category")
    fig.update_yaxes(title_text="transition t", autorange="reversed", dtick=1)
    return apply_layout(fig, title, 340)


def ess_rhat_figure(ess: np.ndarray, rhat: np.ndarray, n_draws: int, title: str | None = None) -> go.Figure:
    """Bulk ESS (against the number of draws, dotted) and R-hat (against 1.01 and 1.1) per dimension."""
    from plotly.subplots import make_subplots

    dims = [f"z{d}" for d in range(len(ess))]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bulk ESS", "R-hat"))
    fig.add_trace(go.Bar(x=dims, y=ess, marker_color=HMC_COLOUR, name="ESS",
                         hovertemplate="%{x}: ESS %{y:.0f}<extra></extra>"), row=1, col=1)
    fig.add_hline(y=n_draws, line=dict(dash="dot", color="grey", width=1), row=1, col=1)
    colours = np.where(np.asarray(rhat) > 1.1, DIVERGENT_COLOUR, np.where(np.asarray(rhat) > 1.01, REJECTED_COLOUR,
                                                                             HMC_COLOUR))
    fig.add_trace(go.Bar(x=dims, y=np.asarray(rhat) - 1.0, base=1.0, marker_color=colours, name="R-hat",
                         hovertemplate="%{x}: R-hat %{y:.3f}<extra></extra>"), row=1, col=2)
    for level in (1.01, 1.1):
        fig.add_hline(y=level, line=dict(dash="dot", color="grey", width=1), row=1, col=2)
    fig.update_xaxes(type="category")
    fig.update_layout(showlegend=False)
    apply_layout(fig, title, 320)
    fig.update_layout(margin=dict(t=60 if title else 40))
    return fig


def _error_bars(se: np.ndarray | None) -> dict:
    if se is None:
        return {}
    return dict(error_y=dict(type="data", array=np.nan_to_num(np.asarray(se, dtype=float)), visible=True))


def iwae_curve_figure(ks: np.ndarray, iwae: np.ndarray, hmc_iwae: np.ndarray | None, elbo_encoder: float,
                      elbo_best: float | None = None, log_evidence: float | None = None,
                      evidence_label: str = "log p(x) by quadrature", title: str | None = None,
                      iwae_se: np.ndarray | None = None, hmc_iwae_se: np.ndarray | None = None) -> go.Figure:
    """IWAE_K under the encoder and IS_K under the Gaussian fitted to the HMC samples, for K on a log
    axis (with Monte Carlo standard errors as bars, when given), against ELBO(q_φ), ELBO(q*) and
    log p(x) (horizontal lines)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ks, y=iwae, mode="lines+markers", name="IWAE(K), encoder proposal",
                             line=dict(color=ENCODER_COLOUR, width=2), **_error_bars(iwae_se),
                             hovertemplate="K = %{x}: %{y:.3f}<extra></extra>"))
    if hmc_iwae is not None:
        fig.add_trace(go.Scatter(x=ks, y=hmc_iwae, mode="lines+markers", name="IS(K), Gaussian fitted to HMC samples",
                                 line=dict(color=HMC_COLOUR, width=2), **_error_bars(hmc_iwae_se),
                                 hovertemplate="K = %{x}: %{y:.3f}<extra></extra>"))
    lines = [(elbo_encoder, "ELBO(q_φ)", ENCODER_COLOUR, "dot")]
    if elbo_best is not None:
        lines.append((elbo_best, "ELBO(q*)", BEST_COLOUR, "dot"))
    if log_evidence is not None:
        lines.append((log_evidence, evidence_label, POSTERIOR_COLOUR, "solid"))
    for value, name, colour, dash in lines:
        fig.add_trace(go.Scatter(x=[ks[0], ks[-1]], y=[value, value], mode="lines", name=name,
                                 line=dict(color=colour, dash=dash, width=1.5),
                                 hovertemplate=f"{name}: {value:.3f}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="K (importance samples)")
    fig.update_yaxes(title_text="nats")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return apply_layout(fig, title, 400)


def gaps_figure(approximation_gap: float, amortisation_gap: float, title: str | None = None) -> go.Figure:
    """log p(x) − ELBO(q_φ) as one bar split into the amortisation and the approximation gap."""
    fig = go.Figure()
    for value, name, colour in ((amortisation_gap, "amortisation gap ELBO(q*) − ELBO(q_φ)", ENCODER_COLOUR),
                                (approximation_gap, "approximation gap log p(x) − ELBO(q*)", BEST_COLOUR)):
        fig.add_trace(go.Bar(y=["log p(x) − ELBO(q_φ)"], x=[value], orientation="h", name=name, marker_color=colour,
                             text=[f"{value:.3f}"], textposition="inside",
                             hovertemplate=f"{name}: %{{x:.3f}} nats<extra></extra>"))
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.5))
    fig.update_xaxes(title_text="nats")
    return apply_layout(fig, title, 220)


def gaps_table(rows: dict[str, float]) -> pd.DataFrame:
    """Named quantities in nats, one per row."""
    return pd.DataFrame([{"quantity": name, "nats": round(float(value), 4)} for name, value in rows.items()],
                        columns=["quantity", "nats"])


def iwae_table(ks: np.ndarray, iwae: np.ndarray, hmc_iwae: np.ndarray | None, iwae_se: np.ndarray | None = None,
               hmc_iwae_se: np.ndarray | None = None) -> pd.DataFrame:
    """The bounds per K, with their Monte Carlo standard errors where known (NaN: a single estimate)."""
    table = pd.DataFrame({"K": np.asarray(ks, dtype=int), "iwae_encoder": np.asarray(iwae)})
    if iwae_se is not None:
        table["iwae_encoder_se"] = np.asarray(iwae_se)
    if hmc_iwae is not None:
        table["is_hmc_gaussian"] = np.asarray(hmc_iwae)
        if hmc_iwae_se is not None:
            table["is_hmc_gaussian_se"] = np.asarray(hmc_iwae_se)
    return table


def dimension_table(encoder_mean: np.ndarray, encoder_std: np.ndarray, samples: np.ndarray, ess: np.ndarray,
                    rhat: np.ndarray) -> pd.DataFrame:
    """Per latent dimension: encoder mean and std, HMC sample mean and std, ESS, R-hat."""
    samples = np.asarray(samples, dtype=float)
    return pd.DataFrame({
        "dim": [f"z{d}" for d in range(samples.shape[1])],
        "encoder_mean": np.asarray(encoder_mean, dtype=float), "encoder_std": np.asarray(encoder_std, dtype=float),
        "hmc_mean": samples.mean(0),
        "hmc_std": samples.std(0, ddof=1) if len(samples) > 1 else np.zeros(samples.shape[1]),
        "ess_bulk": np.asarray(ess, dtype=float), "rhat": np.asarray(rhat, dtype=float),
    })


# -- the HMC lab ---------------------------------------------------------------------------------------------
def toy_target_figure(z1: np.ndarray, z2: np.ndarray, density: np.ndarray, samples: np.ndarray,
                      proposal_mean: np.ndarray, proposal_std: np.ndarray, limits: Limits | None = None,
                      title: str | None = None) -> go.Figure:
    """Fig. 5.7 (a)/(b): the target's contours, the initial proposal's 2σ ellipse and HMC samples."""
    fig = go.Figure()
    fig.add_trace(_contour_trace(z1, z2, density, name="target p*"))
    fig.add_trace(_ellipse_trace(np.asarray(proposal_mean, float), np.diag(np.asarray(proposal_std, float) ** 2),
                                 name="initial proposal, 2σ", colour=ENCODER_COLOUR))
    samples = np.asarray(samples, dtype=float)
    fig.add_trace(go.Scatter(x=samples[:, 0], y=samples[:, 1], mode="markers", name="HMC samples",
                             marker=dict(size=4, color=HMC_COLOUR, opacity=0.6), hoverinfo="skip"))
    if limits is not None:
        x_range, y_range = fitted_limits(limits, proposal_mean, proposal_std)
        fig.update_xaxes(range=list(x_range))
        fig.update_yaxes(range=list(y_range))
    fig.update_xaxes(title_text="z1")
    fig.update_yaxes(title_text="z2")
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return apply_layout(fig, title, 460)


def fitted_limits(limits: Limits, proposal_mean: np.ndarray, proposal_std: np.ndarray, radius: float = 2.0,
                  margin: float = 0.05) -> Limits:
    """The target's plot ``limits`` widened, where needed, to hold the proposal's ``radius``-σ ellipse
    with a ``margin`` (a fraction of the span) around it: an inflated proposal is drawn whole."""
    mean = np.asarray(proposal_mean, dtype=float)
    half = radius * np.asarray(proposal_std, dtype=float) * np.ones(2)
    fitted = []
    for axis, (low, high) in enumerate(limits):
        low, high = float(low), float(high)
        if mean[axis] - half[axis] < low or mean[axis] + half[axis] > high:
            low, high = min(low, mean[axis] - half[axis]), max(high, mean[axis] + half[axis])
            pad = margin * (high - low)
            low, high = (low - pad if mean[axis] - half[axis] <= low else low,
                         high + pad if mean[axis] + half[axis] >= high else high)
        fitted.append((low, high))
    return fitted[0], fitted[1]


def hmc_training_figure(history: dict[str, np.ndarray], title: str | None = None) -> go.Figure:
    """Figs 5.7c and 5.8 over the training iterations: mean acceptance (0.65 dotted), step sizes
    (per dimension: mean over transitions, with the min–max band), HMC objective, SKSD, inflation
    and divergent transitions."""
    from plotly.subplots import make_subplots

    panels = ("mean acceptance", "step sizes φ", "HMC objective E[log p*(z_T)]", "SKSD", "inflation s",
              "divergent transitions")
    fig = make_subplots(rows=2, cols=3, subplot_titles=panels, horizontal_spacing=0.07, vertical_spacing=0.16)
    iterations = np.arange(1, len(history["mean_acceptance"]) + 1)

    def line(values, row, col, name, colour, showlegend=False):
        fig.add_trace(go.Scatter(x=iterations, y=np.asarray(values, dtype=float), mode="lines", name=name,
                                 line=dict(color=colour, width=1.5), showlegend=showlegend), row=row, col=col)

    line(history["mean_acceptance"], 1, 1, "mean acceptance", HMC_COLOUR)
    fig.add_hline(y=OPTIMAL_ACCEPTANCE, line=dict(dash="dot", color="grey", width=1), row=1, col=1)
    step_sizes = np.asarray(history["step_sizes"], dtype=float)  # (iterations, T, dim)
    for d in range(step_sizes.shape[2]):
        colour = ["#1F77B4", "#D62728", "#2CA02C", "#9467BD", "#8C564B"][d % 5]
        low, high = step_sizes[:, :, d].min(1), step_sizes[:, :, d].max(1)
        fig.add_trace(go.Scatter(x=np.concatenate([iterations, iterations[::-1]]), y=np.concatenate([high, low[::-1]]),
                                 fill="toself", fillcolor="rgba(120,120,120,0.15)", line=dict(width=0),
                                 hoverinfo="skip", showlegend=False), row=1, col=2)
        line(step_sizes[:, :, d].mean(1), 1, 2, f"φ of z{d + 1} (mean over t)", colour, showlegend=True)
    line(history["hmc_objective"], 1, 3, "HMC objective", POSTERIOR_COLOUR)
    line(history["sksd"], 2, 1, "SKSD", BEST_COLOUR)
    inflation = np.asarray(history["inflation"], dtype=float).reshape(len(iterations), -1)
    for layer in range(inflation.shape[1]):
        colour = [ENCODER_COLOUR, "#7F5AB6", "#17BECF", "#BCBD22"][layer % 4]
        name = f"inflation of z{layer + 1}" if inflation.shape[1] > 1 else "inflation"
        line(inflation[:, layer], 2, 2, name, colour, showlegend=inflation.shape[1] > 1)
    divergences = np.asarray(history["divergences"], dtype=float)
    fig.add_trace(go.Bar(x=iterations, y=divergences, marker_color=DIVERGENT_COLOUR, name="divergent",
                         showlegend=False), row=2, col=3)
    fig.update_yaxes(range=[0, max(1.0, float(divergences.max(initial=0.0)) * 1.1)], row=2, col=3)
    fig.update_xaxes(title_text="training iteration", row=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    apply_layout(fig, title, 560)
    fig.update_layout(margin=dict(t=70 if title else 40))
    return fig
