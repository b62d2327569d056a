"""One image's inpainting as the page shows it: the mask, the thick brush, and an imputation reduced
to a result row (label choice, NLL per hidden pixel computed once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizvae.evaluation.inpainting_view import (
    InpaintingMask, centred_square, inpainting_result, label_probabilities, thick_brush, uncertainty_vmax,
)
from vizvae.inference.imputers import Imputation


def test_a_square_hole_hides_its_pixels_and_is_clamped_inside_the_image():
    observed = InpaintingMask("square", size=14, top=7, left=7).observed((1, 28, 28))
    hidden = ~observed.reshape(28, 28)
    assert hidden.sum() == 196
    assert hidden[7:21, 7:21].all()
    shifted = InpaintingMask("square", size=10, top=25, left=0).observed((1, 28, 28)).reshape(28, 28)
    assert (~shifted)[18:28, 0:10].all() and (~shifted).sum() == 100  # pushed back to the bottom edge
    assert np.array_equal(centred_square((28, 28), 14), observed)


def test_half_random_and_painted_masks_and_one_mask_for_every_channel():
    top = InpaintingMask("half", half="top").observed((1, 28, 28)).reshape(28, 28)
    assert (~top[:14]).all() and top[14:].all()
    assert InpaintingMask("mcar", rate=0.0).observed((1, 28, 28)).all()
    assert not InpaintingMask("mcar", rate=1.0).observed((1, 28, 28)).any()
    random = InpaintingMask("mcar", rate=0.5, seed=3).observed((1, 28, 28))
    assert np.array_equal(random, InpaintingMask("mcar", rate=0.5, seed=3).observed((1, 28, 28)))
    assert abs((~random).mean() - 0.5) < 4 * 0.5 / 28  # 4 binomial standard errors
    painted = np.zeros(16, dtype=bool)
    painted[5] = True
    colour = InpaintingMask("paint").observed((3, 4, 4), painted)
    assert colour.shape == (48,) and np.flatnonzero(colour).tolist() == [5, 21, 37]
    with pytest.raises(ValueError):
        InpaintingMask("circle").observed((1, 28, 28))


def _loop_dilation(indices, hw):
    """The 8-neighbourhood brush written out, to check the morphology against."""
    height, width = hw
    grid = np.zeros(hw, dtype=bool)
    for index in indices:
        r, c = divmod(index, width)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if 0 <= r + dr < height and 0 <= c + dc < width:
                    grid[r + dr, c + dc] = True
    return np.flatnonzero(grid).tolist()


def test_the_thick_brush_paints_each_pixel_and_its_eight_neighbours():
    assert thick_brush([0], (28, 28)) == [0, 1, 28, 29]  # a corner: four pixels inside
    assert thick_brush([29], (28, 28)) == [0, 1, 2, 28, 29, 30, 56, 57, 58]
    assert thick_brush([], (28, 28)) == []
    indices = np.random.default_rng(0).choice(28 * 20, size=40, replace=False).tolist()
    assert thick_brush(indices, (20, 28)) == _loop_dilation(indices, (20, 28))


def _imputation(label_probs=None, missing_nll=(49.0,), n_missing=(196,)) -> Imputation:
    samples = torch.arange(2 * 10 * 4, dtype=torch.float32).reshape(2, 10, 4)
    nll = None if missing_nll is None else torch.tensor(missing_nll * 2)
    return Imputation("encoder", samples, samples + 0.5, samples[:, 0], torch.full((2, 4), 0.1), nll,
                      torch.tensor([0.02, 0.03]), torch.tensor(n_missing * 2), 0.25, label_probs=label_probs,
                      message="note", diagnostics={"ess": 3.0})


class _Classifier:
    def __call__(self, images: torch.Tensor) -> torch.Tensor:  # class 1 for every image
        return torch.tensor([[0.0, 5.0, 0.0]]).expand(len(images), -1)


def test_a_result_row_keeps_the_first_row_and_its_nll_per_hidden_pixel():
    result = inpainting_result(object(), _imputation(), (1, 2, 2), shown=3)
    assert result.missing_nll == 49.0 and result.missing_nll_per_entry == pytest.approx(49.0 / 196)
    assert result.mse == pytest.approx(0.02) and result.n_missing == 196
    assert result.decoded.shape == (3, 4) and result.samples.shape == (3, 4)
    assert np.array_equal(result.strip("samples"), np.arange(12, dtype=np.float32).reshape(3, 4))
    assert np.array_equal(result.strip("decoded"), result.strip("samples") + 0.5)
    assert result.labels is None and result.label_source is None and result.predicted_label is None
    row = result.scores("Gaussian encoder")
    assert row["NLL per hidden pixel"] == pytest.approx(0.25) and row["predicted label"] is None
    assert row["runtime (s)"] == 0.25 and row["hidden pixels"] == 196
    point = inpainting_result(object(), _imputation(missing_nll=None, n_missing=(0,)), (1, 2, 2))
    assert point.missing_nll is None and point.missing_nll_per_entry is None


def test_labels_come_from_the_digit_classifier_for_digits_without_a_predictor():
    imputation = _imputation(label_probs=torch.tensor([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0]]))
    labels, source = label_probabilities(object(), imputation, (1, 28, 28), _Classifier())
    assert source == "digit classifier" and int(labels.argmax()) == 1
    assert labels.sum().item() == pytest.approx(1.0)
    assert label_probabilities(object(), imputation, (3, 32, 32), _Classifier()) == (None, None)
    assert label_probabilities(object(), imputation, (1, 28, 28), None) == (None, None)


def test_the_uncertainty_scale_is_a_bernoulli_quarter_for_binary_images():
    result = inpainting_result(object(), _imputation(), (1, 2, 2))
    assert uncertainty_vmax([result], binarized=True) == 0.25
    assert uncertainty_vmax([result], binarized=False) == 0.25  # variances of 0.1 stay under the floor
    wide = inpainting_result(object(), Imputation("encoder", *[_imputation().samples] * 2, torch.zeros(2, 4),
                                                  torch.full((2, 4), 0.6), None, None, torch.tensor([4, 4]), 0.0),
                             (1, 2, 2))
    assert uncertainty_vmax([result, wide], binarized=False) == pytest.approx(0.6)


class _CategoricalPredictor:
    """Just the members of ``PredictorModel``: a model with a predictor of a label."""

    has_predictor = True

    def __init__(self, target_kind: str) -> None:
        self.target_kind = target_kind

    def predict_y(self, x, mask, z): ...

    def log_likelihood_terms(self, x, mask, z, y=None, y_mask=None): ...

    def objective(self, x, mask, y=None, y_mask=None, generator=None, warmup=False): ...

    def generative_parameters(self): ...

    def encoder_parameters(self): ...


def test_a_model_with_a_label_predictor_gives_its_own_labels():
    own = torch.tensor([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0]])
    labels, source = label_probabilities(_CategoricalPredictor("categorical"), _imputation(label_probs=own),
                                         (1, 28, 28), _Classifier())
    assert source == "predictor" and torch.equal(labels, own[0])
    result = inpainting_result(_CategoricalPredictor("categorical"), _imputation(label_probs=own), (1, 28, 28))
    assert result.predicted_label == 2 and result.label_probability == pytest.approx(0.7)
    # a real-valued target is no label: the digit classifier speaks instead
    _, source = label_probabilities(_CategoricalPredictor("gaussian"), _imputation(label_probs=own), (1, 28, 28),
                                    _Classifier())
    assert source == "digit classifier"


def test_work_units_scale_with_the_draws_each_method_makes():
    from vizvae.evaluation.inpainting_view import inpainting_work_units
    from vizvae.inference.imputers import ImputationSettings

    small, large = ImputationSettings(n_samples=8, n_iterations=10), ImputationSettings(n_samples=16, n_iterations=10)
    assert inpainting_work_units("encoder", large) == 2 * inpainting_work_units("encoder", small) == 16
    assert inpainting_work_units("mwg", small) == 2 * inpainting_work_units("pseudo_gibbs", small) == 160
    assert inpainting_work_units("sir", ImputationSettings(n_proposals=500)) == 500
    assert inpainting_work_units("hmc", small) == 3 * 8 * small.n_transitions * (small.n_leapfrog + 1)


class _PointModel(torch.nn.Module):
    """Enough of a model for the fills: a device and a parameter's dtype."""

    device = torch.device("cpu")

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


def test_rows_report_their_progress_and_a_failing_row_does_not_stop_the_others():
    from vizvae.evaluation.inpainting_view import inpaint_rows
    from vizvae.inference.imputers import ImputationSettings

    x = np.linspace(0, 1, 4, dtype=np.float32)
    observed = np.array([True, True, False, False])
    seen = []
    results = inpaint_rows(lambda fraction, message=None: seen.append((fraction, message)),
                           {"point": _PointModel(), "broken": object()},
                           [("point", "zero"), ("broken", "zero"), ("point", "zero")], ["zero", "broken", "again"],
                           x, observed, (1, 2, 2), settings=ImputationSettings(n_samples=2))
    assert [f for f, _ in seen] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert seen[1][1] == "broken (2 of 3)"
    assert np.allclose(results[0].mean, [0, 1 / 3, 0, 0])  # zero fill keeps the observed pixels
    assert isinstance(results[1], str) and results[1].startswith("AttributeError")
    assert np.allclose(results[2].mean, results[0].mean)  # the row after the failure still ran
