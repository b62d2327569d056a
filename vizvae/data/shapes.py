"""``shapes``: a small dSprites-like image set with known generative factors (SPEC §2, §1.6).

Every image is one white shape on a black 32×32 canvas, drawn from five independent factors on a
discrete grid, and the data set is the **complete** grid — every combination exactly once — so
the factors are independent and uniformly distributed by construction, as in dSprites (Matthey
et al. 2017). Disentanglement metrics (MIG, DCI) need exactly that: ground-truth factors whose
joint distribution is known.

=========  ==========================================  ======
factor     values                                      levels
=========  ==========================================  ======
shape      square, ellipse, triangle                   3
scale      half-size 3, 3.67, 4.33, 5 px               4
rotation   0°, 18°, 36°, 54°, 72°                      5
x          centre 9, 11, …, 23 px                      8
y          centre 12, 14, …, 20 px                     5
=========  ==========================================  ======

3·4·5·8·5 = 2,400 images; a seeded 80/20 split gives 1,920 train / 480 test. x and y differ on
purpose (x moves the shape over 14 px, y over 8 px): with identical ranges the two position
factors are interchangeable, every rotation of the (x, y) latent plane fits the data equally
well, and a β-VAE has no reason to align its axes with them. Its diagonal posterior favours
the axes along which the decoder changes the image by different amounts (Rolinek et al. 2019,
"VAEs pursue PCA directions (by accident)"), so unequal ranges make x and y identifiable.
Rotations stay below 90° so that no two rotations of a shape draw the same image (a square repeats every 90°,
a triangle every 120°, an ellipse every 180°): every factor is identifiable from the pixels.
Rendering is deterministic (4×4 supersampling gives anti-aliased grey edges); the seed shuffles
the grid and draws the train/test split. The label ``y`` is the shape, so other pages colour points by it.

The factors ride on the returned ``Dataset`` as ``factors_train`` / ``factors_test`` (int codes,
(n, 5), the index into each factor's values), ``factor_names`` and ``factor_values``;
``ground_truth_factors(dataset)`` reads them with a clear error for data sets without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
import numpy as np

from vizvae.data.splits import Dataset, image_dataset, split_indices
from vizvae.errors import DataError

IMAGE_SIZE = 32
SUPERSAMPLE = 4
SHAPE_NAMES = ("square", "ellipse", "triangle")
FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
FACTOR_VALUES: dict[str, np.ndarray] = {
    "shape": np.arange(len(SHAPE_NAMES)),
    "scale": np.linspace(3.0, 5.0, 4),  # half-size in pixels (a square's half side)
    "rotation": np.array([0.0, 18.0, 36.0, 54.0, 72.0]),  # degrees
    "x": np.arange(9.0, 24.0, 2.0),  # centre column, whole pixels: 9, 11, …, 23
    "y": np.arange(12.0, 21.0, 2.0),  # centre row, whole pixels: 12, 14, …, 20
}
TEST_SIZE = 0.2
# sizes relative to ``scale``, chosen so the three shapes cover similar areas (4 s², 2.6 s², 2.5 s²)
ELLIPSE_AXES = (1.3, 0.65)
TRIANGLE_CIRCUMRADIUS = 1.4


@dataclass(frozen=True)
class GroundTruthFactors:
    """The factors of a data set's rows: integer codes into each factor's grid of values."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]  # one array of values per factor
    train: np.ndarray  # (n_train, n_factors) int64 codes
    test: np.ndarray  # (n_test, n_factors) int64 codes

    @property
    def n_levels(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    def value_labels(self, factor: int) -> list[str]:
        """Readable values of one factor, e.g. ``['square', 'ellipse', 'triangle']``."""
        name = self.names[factor]
        if name == "shape":
            return list(SHAPE_NAMES)
        unit = "°" if name == "rotation" else " px"
        return [f"{v:.3g}{unit}" for v in self.values[factor]]


def factor_grid() -> np.ndarray:
    """Every combination of factor codes once, in lexicographic order: (2400, 5) int64."""
    levels = [range(len(FACTOR_VALUES[name])) for name in FACTOR_NAMES]
    return np.array(list(product(*levels)), dtype=np.int64)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of points (u, v), in the shape's own frame scaled so that ``scale`` = 1."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":
        a, b = ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if shape == "triangle":
        # an equilateral triangle with one vertex pointing up (−v is up on screen): inside all
        # three half-planes whose outward normals point away from the vertices
        inradius = TRIANGLE_CIRCUMRADIUS / 2
        inside = np.ones(np.broadcast(u, v).shape, dtype=bool)
        for angle in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            inside &= u * np.cos(angle) + v * np.sin(angle) <= inradius
        return inside
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPE_NAMES}")


def _canonical(shape: str, scale: float, rotation: float, image_size: int, supersample: int) -> np.ndarray:
    """One shape centred on the canvas centre (a pixel corner): coverage (image_size, image_size)."""
    fine = (np.arange(image_size * supersample) + 0.5) / supersample - image_size / 2  # sub-pixel centres
    dy, dx = np.meshgrid(fine, fine, indexing="ij")
    theta = np.deg2rad(rotation)
    # rotate the canvas by −θ into the shape's frame, then undo the scale
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / scale
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) / scale
    coverage = _inside(shape, u, v).astype(np.float32)
    return coverage.reshape(image_size, supersample, image_size, supersample).mean((1, 3))


def _shift(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Translate by whole pixels, filling with black (no wrap-around)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(rows, 0):h + min(rows, 0), max(cols, 0):w + min(cols, 0)] = \
        image[max(-rows, 0):h - max(rows, 0), max(-cols, 0):w - max(cols, 0)]
    return out


def render_shapes(codes: np.ndarray, image_size: int = IMAGE_SIZE, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Draw one image per row of factor codes (n, 5): float32 (n, image_size²) in [0, 1].

    Each pixel is the fraction of its ``supersample²`` sub-pixel centres that fall inside the
    shape, i.e. an anti-aliased coverage value. Positions are whole pixels, so each
    (shape, scale, rotation) is drawn once and translated exactly. Deterministic.
    """
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, len(FACTOR_NAMES))
    images = np.zeros((len(codes), image_size, image_size), dtype=np.float32)
    centre = image_size // 2
    for key in np.unique(codes[:, :3], axis=0):
        canonical = _canonical(SHAPE_NAMES[key[0]], FACTOR_VALUES["scale"][key[1]], FACTOR_VALUES["rotation"][key[2]],
                               image_size, supersample)
        for i in np.flatnonzero((codes[:, :3] == key).all(axis=1)):
            x, y = FACTOR_VALUES["x"][codes[i, 3]], FACTOR_VALUES["y"][codes[i, 4]]
            images[i] = _shift(canonical, int(y) - centre, int(x) - centre)
    return images.reshape(len(codes), -1)


def generate_shapes(seed: int = 0, image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The complete grid, drawn and shuffled with numpy from ``seed``:
    (images (2400, image_size²) float32, factor codes (2400, 5) int64)."""
    codes = factor_grid()
    order = np.random.default_rng(seed).permutation(len(codes))
    codes = codes[order]
    return render_shapes(codes, image_size), codes


def shapes_dataset(binarize: bool = False, seed: int = 0) -> Dataset:
    """The ``shapes`` data set: 32×32 grey images (binarised at 0.5 for Bernoulli models),
    label = shape, seeded 80/20 split, factors attached (see the module docstring)."""
    images, codes = generate_shapes(seed)
    dataset = image_dataset(
        "shapes", images, codes[:, 0], (1, IMAGE_SIZE, IMAGE_SIZE), test_size=TEST_SIZE, binarize=binarize,
        seed=seed, extra={"factors": {name: len(FACTOR_VALUES[name]) for name in FACTOR_NAMES}},
    )
    train, test = split_indices(len(codes), TEST_SIZE, seed)  # the split image_dataset used
    dataset.factors_train = codes[train]
    dataset.factors_test = codes[test]
    dataset.factor_names = FACTOR_NAMES
    dataset.factor_values = tuple(FACTOR_VALUES[name] for name in FACTOR_NAMES)
    return dataset


def ground_truth_factors(dataset: Dataset) -> GroundTruthFactors:
    """The known generative factors of a data set's rows (``shapes`` has them)."""
    try:
        return GroundTruthFactors(tuple(dataset.factor_names), tuple(dataset.factor_values),
                                  np.asarray(dataset.factors_train), np.asarray(dataset.factors_test))
    except AttributeError:
        raise DataError(f"dataset {dataset.name!r} has no ground-truth factors; disentanglement metrics "
                        "need a data set that has them, such as 'shapes'") from None
