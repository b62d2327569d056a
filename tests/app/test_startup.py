"""What the app imports before a page needs it: nothing heavy (umap and its numba, or
scikit-learn's manifold learners) while the model and latent-space pages render with PCA or
the latent plane. Run in a fresh interpreter, since other tests import them."""

import json
import subprocess
import sys

from tests.app.helpers import APP, ROOT, shipped

SCRIPT = """
import json, sys, time
started = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(APP_PATH, default_timeout=120)
at.query_params["model"] = MODEL
at.run()
model_page = time.perf_counter() - started
at = AppTest.from_file(APP_PATH, default_timeout=120)
at.query_params["model"] = MODEL
at.switch_page("pages/latent_space.py").run()
heavy = sorted(m for m in ("umap", "numba", "pynndescent", "sklearn.manifold") if m in sys.modules)
print(json.dumps({"heavy": heavy, "exceptions": [str(e.value) for e in at.exception], "model_page_s": model_page,
                  "total_s": time.perf_counter() - started}))
"""


def test_app_start_imports_nothing_heavy():
    result = subprocess.run([sys.executable, "-c", SCRIPT.replace("APP_PATH", repr(str(APP))).replace("MODEL", repr(shipped("mnist-vae-16d")))], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["exceptions"] == []
    assert report["heavy"] == [], f"imported at start-up: {report['heavy']}"
    print(f"fresh process: model page {report['model_page_s']:.1f} s, both pages {report['total_s']:.1f} s")
