"""``python -m vizvae evaluate MODEL --task batches --json``: Table 4.2 on MNIST.

SVMs (linear and RBF) classify samples of the global posterior q(β | X) of structured batches:
even vs odd digits, even vs odd vs random, Fibonacci vs primes, Fibonacci vs primes vs random;
for a mixed-domain model (``mnist+digits``) the digit batches come from the first domain, and
``domains_*`` separates random batches of one domain from random batches of the other.
The SVMs are fitted on batches drawn from the train split and scored on batches drawn from
the held-out test split (no image is shared between the two).

Options (``-o key=value``): ``train_batches`` (per kind, 100), ``test_batches`` (per kind, 50),
``batch_size`` (128), ``samples`` (β draws per batch, 5), ``seed`` (0).
"""

from __future__ import annotations

from typing import Any

from vizvae.checkpoint import Checkpoint, checkpoint_dataset
from vizvae.data.batches import domain_labels, make_rule
from vizvae.errors import VizvaeError
from vizvae.inference.global_local import BatchProblem, batch_classification
from vizvae.models.capabilities import GroupModel

PROBLEMS = [
    BatchProblem("even_vs_odd", [make_rule("even"), make_rule("odd")]),
    BatchProblem("three_class", [make_rule("even"), make_rule("odd"), make_rule("random")]),
    BatchProblem("fibonacci_vs_primes", [make_rule("fibonacci"), make_rule("primes")]),
    BatchProblem("fibonacci_vs_primes_vs_random", [make_rule("fibonacci"), make_rule("primes"), make_rule("random")]),
]


def evaluate_batches_task(checkpoint: Checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    model = checkpoint.model
    if not (isinstance(model, GroupModel) and model.global_dim > 0):
        raise VizvaeError(f"{checkpoint.name} is a {checkpoint.config['model']} model; the batches task needs a "
                          "global latent variable (ugvae or mlvae)")
    dataset = checkpoint_dataset(checkpoint.config)
    if dataset.y_train is None:
        raise VizvaeError(f"{dataset.name} has no labels to build batches from")
    train_domains, test_domains = domain_labels(dataset, "train"), domain_labels(dataset, "test")
    if train_domains is not None:  # digit rules on the first domain only (MNIST for mnist+digits)
        first = dataset.preprocessing["domains"][0]
        keep_train, keep_test = train_domains == first, test_domains == first
        train = (dataset.x_train[keep_train], dataset.y_train[keep_train])
        test = (dataset.x_test[keep_test], dataset.y_test[keep_test])
    else:
        train, test = (dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)
    settings = {
        "train_batches": int(options.get("train_batches", 100)), "test_batches": int(options.get("test_batches", 50)),
        "batch_size": int(options.get("batch_size", model.config.group_size)),
        "samples": int(options.get("samples", 5)), "seed": int(options.get("seed", 0)),
    }
    results = batch_classification(
        model, train, test, PROBLEMS, n_train_batches=settings["train_batches"],
        n_test_batches=settings["test_batches"], batch_size=settings["batch_size"],
        samples_per_batch=settings["samples"], seed=settings["seed"],
    )
    if train_domains is not None:  # domain alignment (§4.3.2): random batches of one domain vs the other
        names = dataset.preprocessing["domains"]
        problem = BatchProblem("domains", [make_rule("random", domain=name) for name in names])
        results.update(batch_classification(
            model, (dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test), [problem],
            n_train_batches=settings["train_batches"], n_test_batches=settings["test_batches"],
            batch_size=settings["batch_size"], samples_per_batch=settings["samples"], seed=settings["seed"],
            train_domains=train_domains, test_domains=test_domains))
    out: dict[str, Any] = {"model": checkpoint.name, "dataset": dataset.name, **settings}
    for name, accuracies in results.items():
        for acc in accuracies:
            out[f"{name}_train_acc_{acc.classifier}"] = round(acc.train_accuracy, 4)
            out[f"{name}_test_acc_{acc.classifier}"] = round(acc.test_accuracy, 4)
    return out
