"""`sentinel train-behavior` and `sentinel eval-behavior`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.core.settings import ModelSettings


def _dataset_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        default=None,
        help="a bundled dataset: basic-motions (default when --data is not given)",
    )
    src.add_argument(
        "--data",
        default=None,
        metavar="FILE.npz",
        help="your own data: X [N,T,F], optional lengths [N], y [N] (+ optional X_test/...)",
    )


def _print_metrics(title: str, m: dict[str, Any]) -> None:
    print(f"\n{title}: n={m['n']}  accuracy={m['accuracy']:.4f}  macro-F1={m['macro_f1']:.4f}")
    width = max(len(lab) for lab in m["per_class"]) + 2
    print(f"  {'label':<{width}}precision  recall     f1  support")
    for lab, pc in m["per_class"].items():
        print(
            f"  {lab:<{width}}{pc['precision']:9.3f}  {pc['recall']:6.3f}  {pc['f1']:5.3f}"
            f"  {pc['support']:7d}"
        )
    labels = m["confusion_matrix"]["labels"]
    rows = m["confusion_matrix"]["rows_true_cols_pred"]
    print("  confusion matrix (rows: true, columns: predicted)")
    print("  " + " " * width + "".join(f"{lab[:9]:>10}" for lab in labels))
    for lab, row in zip(labels, rows, strict=True):
        print(f"  {lab:<{width}}" + "".join(f"{v:>10d}" for v in row))
    a = m["anomaly"]
    print(
        f"  anomaly detection at threshold {a['threshold']:.3f}: precision={a['precision']:.3f}"
        f"  recall={a['recall']:.3f}  F1={a['f1']:.3f}  ({a['flagged']} flagged,"
        f" {a['actual']} actually abnormal)"
    )


def _print_figures(result: Any) -> None:
    """The candidate beside the active version, on the base test split and held-out feedback."""
    print(f"\ncandidate {result.model_version}  (active: {result.active_version})")
    print(f"  {'data':<22}{'version':<12}{'n':>4}{'accuracy':>10}{'false alarms':>14}{'misses':>8}")
    for part, title in (
        ("base_test", "base test split"),
        ("feedback_holdout", "held-out feedback"),
    ):
        for side in ("candidate", "active"):
            f = getattr(result, side)[part]
            acc = "—" if f["accuracy"] is None else f"{f['accuracy']:.3f}"
            print(
                f"  {title:<22}{side:<12}{f['n']:>4}{acc:>10}{f['false_alarms']:>14}{f['misses']:>8}"
            )
    t = result.trained_on
    print(
        f"  trained on {t['base_sequences']} base + {t['feedback_episodes']} labelled episodes "
        f"({t['feedback_held_out']} held out) in {result.train_seconds:.1f} s"
    )


def _train_with_feedback(args: argparse.Namespace) -> int:
    """Retrain the active version on the database's labelled episodes (like the API's job)."""
    import asyncio

    from app.cli_context import migrated_container
    from app.core.errors import AppError
    from app.services.model_registry import NotEnoughFeedback

    container = migrated_container()

    async def go() -> int:
        registry = container.model_registry()
        try:
            result = await registry.retrain(
                source_ids=args.source_ids or None,
                epochs=args.epochs,
                created_by="cli",
                log=print,
            )
        except NotEnoughFeedback as exc:
            print(f"sentinel: {exc}", file=sys.stderr)
            return 2
        except AppError as exc:
            print(f"sentinel: {exc.message}", file=sys.stderr)
            return 2
        finally:
            await container.database().dispose()
        _print_figures(result)
        if result.status == "active":
            print(
                f"\n{result.model_version} is the active version already (same data, same weights)"
            )
        else:
            print(
                f"\nstored as a {result.status} version; serve it with "
                f"`sentinel activate-model {result.model_version}` or {result.next_step}"
            )
        return 0

    return asyncio.run(go())


def _activate(args: argparse.Namespace) -> int:
    """Make a stored version active (through the gate unless --force)."""
    import asyncio

    from app.cli_context import migrated_container
    from app.core.errors import AppError

    container = migrated_container()

    async def go() -> int:
        registry = container.model_registry()
        try:
            version = await registry.activate(args.model_version, "cli", args.force, args.reason)
        except AppError as exc:
            print(f"sentinel: {exc.message}", file=sys.stderr)
            return 2 if exc.status_code != 409 else 3
        finally:
            await container.database().dispose()
        print(f"{version.model_version} is now active; every server serves it within seconds")
        return 0

    return asyncio.run(go())


def _train(args: argparse.Namespace) -> int:
    if args.with_feedback:
        return _train_with_feedback(args)
    from app.core.settings import Settings
    from app.ml.checkpoint import save_checkpoint
    from app.ml.data import DatasetError, load_dataset
    from app.ml.device import DeviceUnavailable, resolve_device
    from app.ml.training import TrainConfig, train

    try:
        device = resolve_device(args.device or Settings().model.device, strict=True)
    except DeviceUnavailable as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    cfg = TrainConfig(seed=args.seed, threads=args.threads, device=device)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.folds is not None:
        cfg.folds = args.folds
    if args.hidden_size is not None:
        cfg.hidden_size = args.hidden_size
    if args.layers is not None:
        cfg.num_layers = args.layers
    if args.dropout is not None:
        cfg.dropout = args.dropout
    if args.unidirectional:
        cfg.bidirectional = False
    if args.no_distill:
        cfg.distill = False
    if args.student_hidden_size is not None:
        cfg.student_hidden_size = args.student_hidden_size
    if args.student_unidirectional:
        cfg.student_bidirectional = False
    if args.normal_labels:
        cfg.normal_labels = [s.strip() for s in args.normal_labels.split(",") if s.strip()]
    try:
        dataset = load_dataset(args.dataset, args.data, seed=args.seed)
    except DatasetError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    print(
        f"training on {dataset.name} ({device}): {len(dataset.train)} train / {len(dataset.test)} test "
        f"sequences, {dataset.train.feature_dim} features, labels "
        f"{sorted(set(map(str, dataset.train.y)))}"
    )
    try:
        if args.teacher:
            from app.ml.checkpoint import CheckpointError, load_checkpoint
            from app.ml.training import distill_checkpoint

            try:
                teacher = load_checkpoint(args.teacher)
            except CheckpointError as exc:
                raise ValueError(str(exc)) from exc
            ckpt = distill_checkpoint(teacher, dataset, cfg, log=print)
        else:
            ckpt = train(dataset, cfg, log=print)
    except ValueError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    path = save_checkpoint(ckpt, args.out)
    _print_metrics("out-of-fold (training split)", ckpt.metrics["validation_out_of_fold"])
    _print_metrics("test split", ckpt.metrics["test"])
    print(f"\nwrote {path} (model_version {ckpt.model_version}, threshold {ckpt.threshold:.3f})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch

    from app.ml.checkpoint import CheckpointError, load_checkpoint
    from app.ml.data import DatasetError, load_dataset
    from app.ml.training import evaluate

    torch.set_num_threads(args.threads)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        seed = args.seed if args.seed is not None else int(ckpt.training.get("seed", 7))
        dataset = load_dataset(args.dataset, args.data, seed=seed)
    except (CheckpointError, DatasetError) as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    if dataset.test.feature_dim != ckpt.feature_dim:
        print(
            f"sentinel: the data has {dataset.test.feature_dim} features per frame; "
            f"the checkpoint expects {ckpt.feature_dim}",
            file=sys.stderr,
        )
        return 2
    threshold = args.threshold if args.threshold is not None else ckpt.threshold
    probs = ckpt.build_classifier().predict_proba_padded(dataset.test.x, dataset.test.lengths)
    metrics = evaluate(probs, dataset.test.y, ckpt.labels, ckpt.normal_labels, threshold)
    if args.json:
        print(json.dumps({"model_version": ckpt.model_version, "test": metrics}, indent=2))
        return 0
    print(f"checkpoint {args.checkpoint}: {ckpt.model_version}")
    print(f"normal labels: {', '.join(ckpt.normal_labels)}")
    same = ckpt.data_fingerprint == dataset.fingerprint()
    print(f"data fingerprint {'matches' if same else 'differs from'} the training data")
    _print_metrics(f"{dataset.name} test split", metrics)
    return 0


def register_behavior_commands(sub: argparse._SubParsersAction) -> None:
    """Adds `train-behavior` and `eval-behavior` to the `sentinel` command."""
    default_ckpt = ModelSettings().checkpoint_path

    t = sub.add_parser("train-behavior", help="train the behaviour LSTM and write a checkpoint")
    _dataset_args(t)
    t.add_argument("--normal-labels", default=None, help="comma list (default standing,walking)")
    t.add_argument("--epochs", type=int, default=None, help="epochs per ensemble member")
    t.add_argument("--folds", type=int, default=None, help="ensemble members / CV folds")
    t.add_argument("--hidden-size", type=int, default=None, help="LSTM units per direction")
    t.add_argument("--layers", type=int, default=None, help="stacked LSTM layers")
    t.add_argument("--dropout", type=float, default=None, help="dropout between layers (0..1)")
    t.add_argument("--unidirectional", action="store_true", help="plain (not bi-) LSTM")
    t.add_argument(
        "--no-distill",
        action="store_true",
        help="serve the k-fold ensemble itself instead of one distilled student",
    )
    t.add_argument(
        "--student-hidden-size", type=int, default=None, help="student LSTM width (default 32)"
    )
    t.add_argument(
        "--teacher",
        default=None,
        help="distil this ensemble checkpoint into a student instead of training a teacher",
    )
    t.add_argument("--student-unidirectional", action="store_true", help="plain LSTM student")
    t.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="where to train (default MODEL_DEVICE, itself auto = CUDA when available)",
    )
    t.add_argument("--seed", type=int, default=7, help="random seed (splits, initial weights)")
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    t.add_argument("--out", default=default_ckpt, help=f"checkpoint path (default {default_ckpt})")
    t.add_argument(
        "--with-feedback",
        action="store_true",
        help="fine-tune the active version on BasicMotions plus operators' labelled episodes "
        "(from DATABASE_URL) and store a candidate version; --epochs and --source-ids apply",
    )
    t.add_argument(
        "--source-ids",
        nargs="+",
        default=None,
        metavar="SOURCE",
        help="with --with-feedback: only these sources' labels (one site's)",
    )
    t.set_defaults(handler=_train)

    a = sub.add_parser(
        "activate-model", help="serve a stored behaviour-model version (the gate applies)"
    )
    a.add_argument("model_version", help="a version from GET /api/v1/models")
    a.add_argument("--force", action="store_true", help="activate even if the gate refuses")
    a.add_argument("--reason", default=None, help="why (kept with the activation)")
    a.set_defaults(handler=_activate)

    e = sub.add_parser("eval-behavior", help="evaluate a checkpoint on a test split")
    _dataset_args(e)
    e.add_argument("--checkpoint", default=default_ckpt, help="the checkpoint to evaluate")
    e.add_argument("--threshold", type=float, default=None, help="override the stored threshold")
    e.add_argument(
        "--seed",
        type=int,
        default=None,
        help="split seed for .npz without X_test (default: the training seed)",
    )
    e.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(handler=_eval)
