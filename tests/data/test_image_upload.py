"""An uploaded picture as a model input (vizvae/data/user.py ``image_from_upload``)."""

from __future__ import annotations

import io

import numpy as np
import pytest

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
    with pytest.raises(DataError, match="not an image file"):
        image_from_upload(b"this is not a picture", (1, 28, 28))
