"""An uploaded picture as a model input (vizvae/data/user.py ``image_from_upload``)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from tests.data.bombs import png_bomb
from vizvae.checkpoint import REPO_ROOT as ROOT
from vizvae.data.user import image_from_upload
from vizvae.errors import DataError


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_any_size_and_colour_is_converted_and_said_so():
    from PIL import Image

    paper = Image.new("RGBA", (120, 80), (255, 255, 255, 255))
    for x in range(50, 70):
        for y in range(10, 70):
            paper.putpixel((x, y), (0, 0, 0, 255))  # a dark stroke on white paper
    row, notes = image_from_upload(png(paper), (1, 28, 28), binarize=True)
    assert row.shape == (784,) and row.dtype == np.float32
    assert set(np.unique(row)) <= {0.0, 1.0}
    assert notes[0] == "converted from 120×80 RGBA to 28×28 grey, the model's input"
    assert "inverted" in notes[1] and "binarised" in notes[2]
    image = row.reshape(28, 28)
    assert image[:, 14].sum() > 10 and image[:, 2].sum() == 0  # the stroke is light now, the paper dark


def test_an_image_already_in_the_models_format_is_left_alone():
    from PIL import Image

    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[5:23, 12:16] = 255
    row, notes = image_from_upload(png(Image.fromarray(digit, mode="L")), (1, 28, 28))
    assert notes == []
    np.testing.assert_allclose(row, digit.reshape(-1) / 255.0)
    flipped, notes = image_from_upload(png(Image.fromarray(digit, mode="L")), (1, 28, 28), invert="yes")
    np.testing.assert_allclose(flipped, 1.0 - digit.reshape(-1) / 255.0)
    assert notes == ["inverted to light on dark, like the training images"]


def test_an_unreadable_file_is_a_data_error():
    with pytest.raises(DataError, match="not a readable image"):
        image_from_upload(b"this is not a picture", (1, 28, 28))


# -- decompression bombs: refused from the header, before a pixel is decoded ---------------------------------
def run_capped(code: str, cap_bytes: int = 1_500 * 2**20) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python whose address space is capped: a bomb that decodes fails the test
    with a MemoryError instead of taking the machine down."""
    prelude = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({cap_bytes}, {cap_bytes}))\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


@pytest.mark.parametrize("side, reason", [(30_000, "declares 900,000,000 pixels, over the limit"), (6_000, "6,000 × 6,000 pixels")])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, side, reason):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(side, side))
    assert bomb.stat().st_size < 1_000_000  # small on disk: the size of the file says nothing
    code = ("import sys\nfrom vizvae.data.user import image_from_upload\nfrom vizvae.errors import DataError\n"
            f"data = open({str(bomb)!r}, 'rb').read()\nbefore = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    image_from_upload(data, (1, 28, 28))\nexcept DataError as err:\n"
            "    print('refused:', err)\n    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "    print('peak_kb:', peak - before)\nelse:\n    print('decoded')\n")
    result = run_capped(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and reason in result.stdout and "VIZVAE_MAX_IMAGE_PIXELS" in result.stdout
    growth_mb = int(result.stdout.split("peak_kb:")[1].split()[0]) / 1024
    assert growth_mb < side * side / 2**20 / 4  # nowhere near the decoded size (858 MiB / 34 MiB as grey bytes)


def test_the_pixel_limit_is_a_setting(monkeypatch):
    from PIL import Image

    picture = png(Image.new("L", (100, 100), 0))
    monkeypatch.setenv("VIZVAE_MAX_IMAGE_PIXELS", "5000")
    with pytest.raises(DataError, match=r"100 × 100 pixels, over the limit of 5,000 pixels"):
        image_from_upload(picture, (1, 28, 28))
    monkeypatch.setenv("VIZVAE_MAX_IMAGE_PIXELS", "10000")
    row, _ = image_from_upload(picture, (1, 28, 28))
    assert row.shape == (784,)


def test_an_image_folder_with_a_bomb_names_the_file(tmp_path):
    from vizvae.data.user import load_image_folder

    (tmp_path / "big.png").write_bytes(png_bomb(6_000, 6_000))
    with pytest.raises(DataError, match=r"big\.png: the image is 6,000 × 6,000 pixels, over the limit"):
        load_image_folder(tmp_path)


def test_an_upload_is_decoded_once_not_on_every_rerun():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from pages._common import once_per_upload

        class Upload:  # what st.file_uploader returns: an id per upload, the bytes
            def __init__(self, file_id, data):
                self.file_id, self.data = file_id, data

            def getvalue(self):
                return self.data

        def decode(data):
            st.session_state["decodes"] = st.session_state.get("decodes", 0) + 1
            return len(data)

        upload = Upload(st.session_state.get("file_id", "a"), b"12345")
        st.text(str(once_per_upload("_slot", upload, ("grey",), decode)))

    at = AppTest.from_function(script).run()
    at.run()
    at.run()
    assert at.session_state["decodes"] == 1 and at.text[0].value == "5"
    at.session_state["file_id"] = "b"  # a new upload
    at.run()
    assert at.session_state["decodes"] == 2
