"""Data sets at full size (``vizvae.data.sources``): memory-mapped ``.npy`` and ``.npz``, Parquet by row
group, image folders decoded on read; hostile files refused from their headers."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vizvae.data.sources import MAX_ITEMS, open_items
from vizvae.errors import DataError

RNG = np.random.default_rng(0)


def test_npy_is_memory_mapped_and_read_by_slices(tmp_path):
    x = RNG.random((500, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    source = open_items(tmp_path / "x.npy")
    assert isinstance(source.array, np.memmap)
    assert (len(source), source.n_features, source.image_shape) == (500, 64, (1, 8, 8))
    assert np.array_equal(source[123:321], x[123:321].reshape(198, 64))
    assert source[490:600].shape == (10, 64)
    pixels = RNG.integers(0, 256, (20, 16), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", pixels)
    assert np.allclose(open_items(tmp_path / "u8.npy")[0:20], pixels / 255.0)


def test_hostile_npy_files_are_refused_from_the_header(tmp_path):
    (tmp_path / "pickle.npy").write_bytes(pickle.dumps({"x": 1}))
    np.save(tmp_path / "objects.npy", np.array([[object()]] * 3, dtype=object), allow_pickle=True)
    np.save(tmp_path / "flat.npy", np.zeros(10, dtype=np.float32))
    with open(tmp_path / "huge.npy", "wb") as handle:  # a header that promises 10^9 items and holds none
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (MAX_ITEMS * 100, 784)})
    for name, text in [("pickle", "not a .npy"), ("objects", "must be numbers"), ("flat", "one row per item"),
                       ("huge", "at most")]:
        with pytest.raises(DataError, match=text):
            open_items(tmp_path / f"{name}.npy")


def test_an_uncompressed_npz_is_mapped_in_place_and_a_compressed_one_refused(tmp_path):
    x, y = RNG.random((300, 12), dtype=np.float32), RNG.integers(0, 3, 300)
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    source = open_items(tmp_path / "plain.npz")
    assert isinstance(source.array, np.memmap) and np.array_equal(source[7:250], x[7:250])
    assert np.array_equal(source.labels, y)
    np.savez_compressed(tmp_path / "packed.npz", x=x)
    with pytest.raises(DataError, match="compressed"):
        open_items(tmp_path / "packed.npz")
    np.savez(tmp_path / "other.npz", images=x)
    with pytest.raises(DataError, match="named 'x'"):
        open_items(tmp_path / "other.npz")


def test_parquet_is_read_a_row_group_at_a_time(tmp_path):
    x = RNG.random((1000, 3)).astype(np.float32)
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "name": ["row"] * 1000, "c": x[:, 2]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=300)
    source = open_items(tmp_path / "t.parquet")
    assert (len(source), source.n_features, source.columns) == (1000, 3, ["a", "b", "c"])  # text left out
    assert np.array_equal(source[250:910], x[250:910]) and np.array_equal(source[0:1000], x)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet"):
        open_items(tmp_path / "bad.parquet")


def test_an_image_folder_is_decoded_when_read(tmp_path):
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 20), 80 * i, dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    source = open_items(tmp_path, image_shape=(1, 10, 10))
    assert len(source) == 6 and source.n_features == 100 and list(source.labels) == [0, 0, 0, 1, 1, 1]
    assert np.allclose(source[1:3], np.repeat([[80 / 255], [160 / 255]], 100, axis=1))
    (tmp_path / "dogs" / "9.png").write_bytes(b"not an image")
    broken = open_items(tmp_path, image_shape=(1, 10, 10))
    with pytest.raises(DataError, match="9.png"):
        broken[0:7]


def test_encodings_take_a_source(tmp_path, monkeypatch):
    from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
    from vizvae.inference.encodings import cached_encodings

    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "cache"))
    x = RNG.random((700, 1, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    model = load_checkpoint(SHIPPED_DIR / "shapes-vae-b1", device="cpu").model
    mean, _, cached = cached_encodings(SHIPPED_DIR / "shapes-vae-b1", model, open_items(tmp_path / "x.npy"),
                                       batch_size=256)
    assert not cached and mean.shape == (700, model.latent_dim)
    _, _, cached = cached_encodings(SHIPPED_DIR / "shapes-vae-b1", model, open_items(tmp_path / "x.npy"))
    assert cached


def test_a_csv_is_converted_once_and_text_is_refused_by_column_and_line(tmp_path):
    table = RNG.random((2500, 3)).astype(np.float32)
    lines = ["a,b,c"] + [",".join(repr(float(v)) for v in row) for row in table]
    lines[11] = lines[11].split(",")[0] + ",,7"  # an empty cell: a missing value
    (tmp_path / "t.csv").write_text("\n".join(lines))  # no newline after the last line
    source = open_items(tmp_path / "t.csv", cache_dir=tmp_path / "cache")
    assert (len(source), source.n_features, source.image_shape) == (2500, 3, None)
    assert np.allclose(source[100:2500], table[100:2500]) and np.isnan(source[10:11][0, 1])
    assert list((tmp_path / "cache" / "tables").glob("*.npy")) != []
    (tmp_path / "blank.csv").write_text("\n".join(lines[:101]) + "\n\n\n")  # blank lines at the end
    assert len(open_items(tmp_path / "blank.csv", cache_dir=tmp_path / "cache")) == 100
    lines[1500] = "1,two,3"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"column 'b', line 1501"):
        open_items(tmp_path / "bad.csv", cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "tables").iterdir() if p.name.startswith(".")] == []
