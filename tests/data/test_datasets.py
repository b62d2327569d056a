import numpy as np
import pytest

from vizvae.data import DataError, load_dataset
from vizvae.data.splits import split_indices
from vizvae.data.schema import ColumnType, infer_kind


def test_mnist_is_the_real_embedded_subset(mnist):
    assert mnist.x_train.shape == (4000, 784) and mnist.x_test.shape == (1000, 784)
    assert set(np.unique(mnist.x_train)) == {0.0, 1.0}  # binarised at 0.5
    labels = np.concatenate([mnist.y_train, mnist.y_test])
    assert np.bincount(labels.astype(int)).tolist() == [500] * 10  # 500 per class
    assert mnist.n_classes == 10 and mnist.image_shape == (1, 28, 28)


def test_grey_mnist_keeps_levels():
    grey = load_dataset("mnist", binarize=False)
    assert 0.0 <= grey.x_train.min() and grey.x_train.max() <= 1.0
    assert len(np.unique(grey.x_train)) > 100


def test_split_is_fixed_and_disjoint():
    a_train, a_test = split_indices(100, 0.2, seed=0)
    b_train, b_test = split_indices(100, 0.2, seed=0)
    assert np.array_equal(a_train, b_train) and np.array_equal(a_test, b_test)
    assert len(a_test) == 20 and not set(a_train) & set(a_test)
    assert not np.array_equal(split_indices(100, 0.2, seed=1)[1], a_test)


@pytest.mark.parametrize("name,n,d", [("boston", 506, 13), ("diabetes", 442, 10), ("wine", 178, 13)])
def test_tables_shapes_and_train_standardisation(name, n, d):
    data = load_dataset(name)
    assert len(data.x_train) + len(data.x_test) == n and data.n_features == d
    for j, column in enumerate(data.schema):
        if not column.is_discrete:
            # standardised with train statistics: train mean 0, std 1 exactly, test only roughly
            assert abs(data.x_train[:, j].mean()) < 1e-4
            assert abs(data.x_train[:, j].std() - 1) < 1e-3
        else:
            assert set(np.unique(data.x_train[:, j])) <= set(range(column.n_categories))


def test_boston_types_follow_the_default_rule():
    kinds = {c.name: c.kind for c in load_dataset("boston").schema}
    assert kinds["CHAS"] == "bernoulli" and kinds["RAD"] == "categorical"
    assert kinds["CRIM"] == "loggaussian"
    assert load_dataset("diabetes").schema[1].kind == "bernoulli"  # SEX
    assert load_dataset("wine").n_classes == 3


def test_table_round_trip_to_raw_units():
    from mlxtend.data import boston_housing_data

    data = load_dataset("boston")
    raw, _ = boston_housing_data()
    from vizvae.data.splits import split_indices as split

    train, _ = split(len(raw), 0.2, seed=0)
    np.testing.assert_allclose(data.features_to_raw(data.x_train), raw[train], rtol=1e-4, atol=1e-4)


def test_default_rule():
    assert infer_kind(np.array([0.0, 1.0, 1.0])) == "bernoulli"
    assert infer_kind(np.array([1.0, 2.0, 3.0, 2.0])) == "categorical"
    assert infer_kind(np.arange(20.0)) == "loggaussian"
    assert infer_kind(np.arange(20.0) - 5) == "gaussian"


def test_loggaussian_is_standardised_log1p():
    raw = np.array([0.0, 1.0, 3.0, 7.0])
    column = ColumnType("a", "loggaussian").fit(raw)
    logs = np.log1p(raw)
    np.testing.assert_allclose(column.to_model(raw), (logs - logs.mean()) / logs.std(), rtol=1e-6)
    np.testing.assert_allclose(column.to_raw(column.to_model(raw)), raw, atol=1e-5)


def test_digits_upsampled_to_mnist_size():
    digits = load_dataset("digits", image_size=28)
    assert digits.image_shape == (1, 28, 28) and digits.x_train.shape[1] == 784
    image = digits.x_train[0].reshape(28, 28)
    assert image[:4].sum() == 0 and image[-4:].sum() == 0  # centred in a 20x20 box
    assert image[4:24, 4:24].sum() > 0


def test_unknown_dataset_says_what_is_expected():
    with pytest.raises(DataError, match="expected one of mnist, digits"):
        load_dataset("cifar")


def test_bad_option_is_a_clear_error():
    with pytest.raises(DataError, match="does not take"):
        load_dataset("boston", binarize=True)
