"""The rule that keeps CI honest: no Chromium skips a browser test locally but fails it in CI.
(Runs without a browser.)"""

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.e2e.conftest import require_chromium


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_missing_chromium_fails_in_ci(ci):
    with pytest.raises(Failed, match="CI=true but Chromium is missing"):
        require_chromium(None, {"CI": ci})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}])
def test_missing_chromium_skips_outside_ci(environ):
    with pytest.raises(Skipped):
        require_chromium(None, environ)


def test_present_chromium_neither_skips_nor_fails():
    require_chromium("/usr/bin/chromium", {"CI": "true"})
