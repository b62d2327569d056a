"""A small digit classifier that vizvae trains and ships, used as the feature extractor of the
Fréchet distance (``fd.py``) in place of Inception (thesis Table 4.1 uses FID; SPEC §5).

Features are the 128 activations before the output layer. The classifier is trained on the
MNIST train split in grey levels *and* binarised at 0.5, so it describes both the binarised
test images and a Bernoulli decoder's grey-level means.

Saved as a folder like a model checkpoint — ``model.safetensors`` (weights only) and
``config.json`` with ``"format": "vizvae.classifier"`` — and loaded without unpickling: the
safetensors header is checked by ``vizvae.checkpoint.inspect_weights`` first.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizvae.errors import CheckpointError

FORMAT = "vizvae.classifier"
CLASSIFIER_NAME = "mnist-digit-classifier"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class ClassifierConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)
    channels: tuple[int, int] = (16, 32)
    feature_dim: int = 128
    classes: int = 10


class DigitClassifier(nn.Module):
    """conv 3×3 → ReLU → max-pool, twice; linear → ReLU (the features); linear → logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        c1, c2 = config.channels
        self.convs = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.feature_layer = nn.Sequential(nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), config.feature_dim), nn.ReLU())
        self.output = nn.Linear(config.feature_dim, config.classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C·H·W) images in [0, 1] -> (n, feature_dim)."""
        return self.feature_layer(self.convs(x.reshape(-1, *self.config.image_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@torch.inference_mode()
def classifier_features(classifier: DigitClassifier, images: np.ndarray | torch.Tensor,
                        batch_size: int = 500) -> np.ndarray:
    """Features of every image, batched: (n, features) -> (n, feature_dim) float64."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=classifier.device)
    parts = [classifier.features(x[i:i + batch_size]).double().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy()


@torch.inference_mode()
def accuracy(classifier: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=classifier.device)
    predictions = torch.cat([classifier(x[i:i + 500]).argmax(-1).cpu() for i in range(0, len(x), 500)])
    return float((predictions.numpy() == np.asarray(labels).astype(int)).mean())


def train_digit_classifier(x_train: np.ndarray, y_train: np.ndarray, steps: int = 2000, batch_size: int = 128,
                           lr: float = 1e-3, seed: int = 0, config: ClassifierConfig | None = None,
                           device: str | torch.device = "cpu") -> DigitClassifier:
    """Adam on cross-entropy; every batch is binarised at 0.5 with probability ½ (see module doc)."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    classifier = DigitClassifier(config or ClassifierConfig()).to(device)
    x = torch.as_tensor(np.asarray(x_train, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(y_train).astype(np.int64), device=device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    classifier.train()
    for _ in range(steps):
        rows = torch.randint(len(x), (batch_size,), generator=generator, device=device)
        batch = x[rows]
        if torch.rand((), generator=generator, device=device) < 0.5:
            batch = (batch > 0.5).float()
        loss = F.cross_entropy(classifier(batch), y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    classifier.eval()
    for parameter in classifier.parameters():
        parameter.requires_grad_(False)
    return classifier


def save_classifier(classifier: DigitClassifier, folder: str | Path, name: str, overwrite: bool = True,
                    card: str | None = None, **sections: Any) -> Path:
    """Save atomically (``vizvae.checkpoint.replacing_folder``), with ``card`` as card.md when given."""
    from vizvae.checkpoint import finite_state, library_versions, replacing_folder, write_weights_and_config

    folder = Path(folder)
    with replacing_folder(folder, overwrite=overwrite) as staging:
        state = finite_state(classifier, folder)
        config = {"format": FORMAT, "name": name, "model": "digit-classifier", "config": asdict(classifier.config),
                  "versions": library_versions(), **sections}
        write_weights_and_config(staging, state, {"format": FORMAT}, config)
        if card is not None:
            (staging / "card.md").write_text(card)
    return folder


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> DigitClassifier:
    """Load a saved classifier without unpickling; ``CheckpointError`` names what is wrong."""
    from vizvae.checkpoint import load_weights, read_json_config
    from vizvae.checkpoint_schema import check_model_arguments

    folder = Path(folder)
    config_file, weights_file = folder / CONFIG, folder / WEIGHTS
    config = read_json_config(config_file, FORMAT, "a vizvae classifier",
                              missing_hint=f"build the classifier with `python -m vizvae rebuild --only {CLASSIFIER_NAME}`")
    arguments = check_model_arguments(ClassifierConfig, config.get("config"), config_file)

    def build() -> DigitClassifier:
        try:
            return DigitClassifier(ClassifierConfig(**arguments))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{config_file}: its \"config\" does not build a DigitClassifier ({err})") from None

    return load_weights(build, weights_file, device)


def default_classifier_folder() -> Path:
    from vizvae.checkpoint import SHIPPED_DIR

    return SHIPPED_DIR / CLASSIFIER_NAME


def train_classifier_command(args) -> int:
    """``python -m vizvae train --model digit-classifier --dataset mnist --steps N --out DIR``."""
    import shlex
    import sys

    from vizvae.data import load_dataset
    from vizvae.device import resolve_device

    if args.dataset != "mnist":
        print("error: the digit classifier is trained on --dataset mnist", file=sys.stderr)
        return 2
    dataset = load_dataset("mnist", binarize=False)
    device = resolve_device(args.device)
    steps = args.steps or 2000
    started = time.perf_counter()
    classifier = train_digit_classifier(dataset.x_train, dataset.y_train, steps=steps, batch_size=args.batch_size,
                                        lr=args.lr, seed=args.seed, device=device)
    seconds = time.perf_counter() - started
    evaluation = {
        "test_accuracy": round(accuracy(classifier, dataset.x_test, dataset.y_test), 4),
        "test_accuracy_binarised": round(accuracy(classifier, (dataset.x_test > 0.5).astype(np.float32),
                                                  dataset.y_test), 4),
    }
    out = Path(args.out)
    command = "python -m vizvae train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["train"] else ""
    card = (f"# {args.name or out.name}\n\nA small CNN digit classifier (features for the Fréchet distance; not "
            f"Inception).\n\n- trained {steps} steps on the MNIST train split (grey and binarised), seed {args.seed}, "
            f"{seconds:.0f} s\n- test accuracy {evaluation['test_accuracy']:.4f} (grey), "
            f"{evaluation['test_accuracy_binarised']:.4f} (binarised)\n- rebuild: `{command}`\n")
    save_classifier(classifier.cpu(), out, args.name or out.name, overwrite=args.overwrite, card=card,
                    dataset=dataset.describe(),
                    training={"steps": steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                              "seconds": round(seconds, 1), "device": str(device), "command": command},
                    evaluation=evaluation)
    print(f"digit classifier: test accuracy {evaluation['test_accuracy']:.4f}; saved {out}", flush=True)
    return 0
