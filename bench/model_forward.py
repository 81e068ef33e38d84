"""Bare torch forward pass of behaviour checkpoints (the anchor for analyze's model cost).

    uv run python bench/model_forward.py [CHECKPOINT ...] [--batch 1,32] [--seconds 3]

One torch thread (as served, TORCH_NUM_THREADS=1), 100×6 sequences, the classifier's own
`predict_proba_padded` (normalisation + forward + softmax + ensemble mean). Prints sequences/s
per batch size and the ratio to the first checkpoint.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from app.ml.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def rate(classifier, batch: int, seconds: float) -> float:
    x = np.random.default_rng(7).normal(size=(batch, 100, 6)).astype(np.float32)
    lengths = np.full(batch, 100)
    classifier.predict_proba_padded(x, lengths)
    runs = []
    for _ in range(5):
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 5:
            classifier.predict_proba_padded(x, lengths)
            n += batch
        runs.append(n / (time.perf_counter() - started))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "checkpoints", nargs="*", default=[str(ROOT / "data/models/behavior_lstm.pt")]
    )
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    batches = [int(b) for b in args.batch.split(",")]
    first: dict[int, float] = {}
    for path in args.checkpoints:
        ckpt = load_checkpoint(path)
        classifier = ckpt.build_classifier()
        arch = ckpt.metadata()["architecture"]
        for batch in batches:
            r = rate(classifier, batch, args.seconds)
            first.setdefault(batch, r)
            print(
                f"{ckpt.model_version:40} members {arch['ensemble_size']} hidden "
                f"{arch['hidden_size']:3} batch {batch:3}: {r:8.0f} seq/s "
                f"({r / first[batch]:.2f}x the first)"
            )


if __name__ == "__main__":
    main()
