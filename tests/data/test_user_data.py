import json

import numpy as np
import pytest
from PIL import Image

from vizvae.data import DataError, load_dataset


def test_image_folder_with_label_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    data = load_dataset(str(tmp_path))
    assert data.image_shape == (1, 28, 28)
    assert len(data.x_train) + len(data.x_test) == 10
    assert data.n_classes == 2 and 0 <= data.x_train.min() and data.x_train.max() <= 1


def test_image_folder_rejects_non_images(tmp_path):
    (tmp_path / "a.png").write_text("not an image")
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset(str(tmp_path))


def test_npz(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 16, 16)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 4)
    data = load_dataset(str(tmp_path / "d.npz"))
    assert data.image_shape == (1, 16, 16) and data.n_classes == 4
    np.testing.assert_allclose(np.sort(np.concatenate([data.x_train, data.x_test]).sum(1)),
                               np.sort(x.reshape(20, -1).sum(1) / 255.0), rtol=1e-5)


def test_npz_without_x(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(DataError, match="expected an array named 'x'"):
        load_dataset(str(tmp_path / "d.npz"))


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="without pickled objects"):
        load_dataset(str(tmp_path / "d.npz"))


def _csv(tmp_path, rows):
    path = tmp_path / "t.csv"
    path.write_text("age,smoker,colour,income,target\n" + "\n".join(rows) + "\n")
    return path


def test_csv_with_schema(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"{rng.uniform(20, 80):.1f},{i % 2},{i % 3},{rng.normal():.3f},{rng.normal():.3f}" for i in range(30)]
    rows[3] = rows[3].replace(rows[3].split(",")[0], "", 1)  # an empty cell = missing
    path = _csv(tmp_path, rows)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"target": "target", "columns": {"age": "gaussian", "colour": "categorical"}}))
    data = load_dataset(str(path), schema=str(schema))
    kinds = [c.kind for c in data.schema]
    assert kinds == ["gaussian", "bernoulli", "categorical", "gaussian"]
    assert data.target_name == "target" and data.schema[2].n_categories == 3
    assert np.isnan(np.concatenate([data.x_train, data.x_test])).sum() == 1


def test_csv_with_text_in_a_numeric_column(tmp_path):
    path = _csv(tmp_path, ["1,0,1,2.5,1", "2,1,2,abc,2", "3,0,0,1.0,3"])
    with pytest.raises(DataError, match=r"column 'income' row 3 holds 'abc'; expected a number"):
        load_dataset(str(path))


def test_csv_schema_naming_a_missing_column(tmp_path):
    path = _csv(tmp_path, ["1,0,1,2.5,1", "2,1,2,1.5,2", "3,0,0,1.0,3"])
    with pytest.raises(DataError, match="not in the data"):
        load_dataset(str(path), schema={"columns": {"height": "gaussian"}})


def test_csv_bad_type_name(tmp_path):
    path = _csv(tmp_path, ["1,0,1,2.5,1", "2,1,2,1.5,2", "3,0,0,1.0,3"])
    with pytest.raises(DataError, match="unknown type 'poisson'"):
        load_dataset(str(path), schema={"columns": {"age": "poisson"}})


def test_unknown_file_kind(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hi")
    with pytest.raises(DataError, match="expected an image folder, an .npz or a .csv"):
        load_dataset(str(path))
