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


# -- training input: refused before any work, recorded so a checkpoint finds its data again --------------------
def _table(tmp_path, n=40, name="t.csv"):
    rng = np.random.default_rng(1)
    rows = [f"{rng.uniform(20, 80):.1f},{i % 2},{i % 3},{rng.normal():.3f},{rng.normal():.3f}" for i in range(n)]
    return _csv(tmp_path, rows).rename(tmp_path / name)


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "1e308", "1e400"])
def test_a_csv_with_a_value_no_model_can_hold_is_refused_naming_the_cell(tmp_path, cell):
    path = _table(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].split(",", 1)[0] + f",{cell}," + lines[5].split(",", 2)[2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"column 'smoker' row 6 holds '{cell}'; expected a number, finite"):
        load_dataset(str(path))


@pytest.mark.parametrize("n", [1, 2])
def test_a_csv_too_short_to_split_is_refused(tmp_path, n):
    path = _table(tmp_path, n=n)
    with pytest.raises(DataError, match=rf"{n} rows?; a dataset needs at least 3"):
        load_dataset(str(path))


@pytest.mark.parametrize("schema_name", ["schema.json", "t.schema.json"])
def test_the_schema_beside_the_csv_is_honoured(tmp_path, schema_name):
    path = _table(tmp_path)
    (tmp_path / schema_name).write_text(json.dumps({"target": "age", "columns": {"colour": "categorical",
                                                                                 "income": "gaussian"}}))
    data = load_dataset(str(path))
    assert data.target_name == "age"  # not the last column
    assert data.feature_names == ["smoker", "colour", "income", "target"]
    assert [c.kind for c in data.schema][:3] == ["bernoulli", "categorical", "gaussian"]


def test_a_checkpoint_trained_on_a_csv_finds_its_data_again_and_says_when_it_moved_or_changed(tmp_path):
    from vizvae.__main__ import main
    from vizvae.checkpoint import checkpoint_dataset, read_config

    path = _table(tmp_path)
    (tmp_path / "schema.json").write_text(json.dumps({"target": "age"}))
    out = tmp_path / "model"
    assert main(["train", "--model", "vae", "--dataset", str(path), "--latent-dim", "2", "--hidden", "8",
                 "--steps", "2", "--quiet", "--out", str(out)]) == 0
    config = read_config(out)
    recorded = config["dataset"]["preprocessing"]
    assert recorded["source"] == str(path.resolve()) and len(recorded["sha256"]) == 64
    again, fresh = checkpoint_dataset(config), load_dataset(str(path))
    assert again.target_name == "age" and [c.to_json() for c in again.schema] == [c.to_json() for c in fresh.schema]
    np.testing.assert_array_equal(again.x_test, fresh.x_test)
    (tmp_path / "schema.json").write_text(json.dumps({"target": "income"}))  # the schema is part of the data
    with pytest.raises(DataError, match=r"'t.csv' has changed since this checkpoint was trained on it"):
        checkpoint_dataset(config)
    (tmp_path / "schema.json").write_text(json.dumps({"target": "age"}))
    path.rename(tmp_path / "moved.csv")
    with pytest.raises(DataError, match=r"trained on 't.csv', which was at .*t\.csv and is not there any more"):
        checkpoint_dataset(config)


def test_an_npz_with_non_finite_values_is_refused(tmp_path):
    x = np.zeros((10, 4, 4), dtype=np.float32)
    x[3, 1, 1] = np.inf
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(DataError, match="1 values that are not finite"):
        load_dataset(str(tmp_path / "d.npz"))


def test_an_image_folder_is_recorded_with_a_digest_that_sees_a_changed_image(tmp_path):
    from PIL import Image

    from vizvae.data.user import data_digest

    for i in range(4):
        Image.new("L", (8, 8), i * 40).save(tmp_path / f"{i}.png")
    data = load_dataset(str(tmp_path))
    assert data.preprocessing["sha256"] == data_digest(tmp_path)
    Image.new("L", (8, 8), 255).save(tmp_path / "2.png")
    assert data_digest(tmp_path) != data.preprocessing["sha256"]
