"""The class palette: ten colours a reader tells apart (CIEDE2000, Sharma, Wu & Dalal 2005), one per
label in the latent-space scatter."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vizvae.viz.figures import CLASS_COLOURS, projection_figure

PLOTLY_DEFAULT = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A",
                  "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52"]  # the palette that had 6 and 8 alike
MIN_DELTA_E = 15.0  # CIEDE2000 units; ≈ 2 is a just-noticeable difference side by side


def lab(colour: str) -> tuple[float, float, float]:
    """sRGB hex -> CIELAB (D65)."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 216 / 24389))
    f = np.where(xyz / np.array([0.95047, 1.0, 1.08883]) > 216 / 24389, f,
                 (24389 / 27 * xyz / np.array([0.95047, 1.0, 1.08883]) + 16) / 116)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def delta_e_2000(lab1, lab2) -> float:
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = math.degrees(math.atan2(b1, a1p)) % 360, math.degrees(math.atan2(b2, a2p)) % 360
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    d_hue = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    if c1p * c2p == 0:
        h_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_bar = (h1p + h2p) / 2
    else:
        h_bar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_bar - 30)) + 0.24 * math.cos(math.radians(2 * h_bar))
         + 0.32 * math.cos(math.radians(3 * h_bar + 6)) - 0.20 * math.cos(math.radians(4 * h_bar - 63)))
    l_bar, c_bar_p = (l1 + l2) / 2, (c1p + c2p) / 2
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_bar_p, 1 + 0.015 * c_bar_p * t
    r_c = 2 * math.sqrt(c_bar_p**7 / (c_bar_p**7 + 25**7))
    r_t = -math.sin(math.radians(60 * math.exp(-(((h_bar - 275) / 25) ** 2)))) * r_c
    terms = ((l2 - l1) / s_l, (c2p - c1p) / s_c, d_hue / s_h)
    return math.sqrt(terms[0] ** 2 + terms[1] ** 2 + terms[2] ** 2 + r_t * terms[1] * terms[2])


def closest_pair(palette: list[str]) -> float:
    return min(delta_e_2000(lab(a), lab(b)) for a, b in itertools.combinations(palette, 2))


def test_delta_e_2000_matches_the_published_test_pairs():
    # Sharma, Wu & Dalal (2005), Table 1, pairs 1 and 7
    assert delta_e_2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert delta_e_2000((50.0, 0.0, 0.0), (50.0, -1.0, 2.0)) == pytest.approx(2.3669, abs=1e-4)


def test_ten_labels_get_ten_colours_every_two_clearly_apart():
    assert len(set(CLASS_COLOURS)) == 10
    assert closest_pair(CLASS_COLOURS) > MIN_DELTA_E
    assert closest_pair(PLOTLY_DEFAULT) < MIN_DELTA_E  # what the page had


def test_each_digit_is_drawn_in_its_own_palette_colour():
    marker = projection_figure(np.zeros((10, 2)), np.arange(10), [str(d) for d in range(10)]).data[0].marker
    scale, low, high = marker.colorscale, marker.cmin, marker.cmax
    for code in range(10):
        position = (code - low) / (high - low)  # where plotly reads the code's colour
        (colour,) = {c for (p, c), (q, d) in zip(scale, scale[1:]) if p <= position <= q and c == d}
        assert colour == CLASS_COLOURS[code]  # a flat band around the code
