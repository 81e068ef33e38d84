"""The behaviour LSTM, its checkpoint format, training and the CLI (tiny synthetic data only)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main as sentinel
from app.ml.checkpoint import (
    BehaviorCheckpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from app.ml.data import DatasetError, load_npz
from app.ml.model import BehaviorClassifier, BehaviorLSTM, LSTMConfig, pad_sequences
from app.ml.training import TrainConfig, choose_threshold, evaluate, train

LABELS = ["jumping", "standing", "walking"]


def synthetic(n_per_class: int, seed: int, t: int = 12, f: int = 3) -> tuple[np.ndarray, ...]:
    """Three trivially separable behaviours: constant level, slow sine, large fast sine."""
    rng = np.random.default_rng(seed)
    xs, lengths, ys = [], [], []
    steps = np.arange(t)[:, None]
    for label in LABELS:
        for _ in range(n_per_class):
            n = int(rng.integers(t // 2, t + 1))
            if label == "standing":
                seq = np.full((t, f), 0.1)
            elif label == "walking":
                seq = np.sin(steps * 0.5 + rng.uniform(0, 3)) * np.ones((1, f))
            else:
                seq = 4 * np.sin(steps * 2.5 + rng.uniform(0, 3)) * np.ones((1, f))
            seq = seq + rng.normal(0, 0.05, (t, f))
            seq[n:] = 0
            xs.append(seq)
            lengths.append(n)
            ys.append(label)
    return np.array(xs, dtype=np.float32), np.array(lengths), np.array(ys)


TINY = TrainConfig(
    epochs=25, folds=2, hidden_size=8, batch_size=8, lr=2e-2, threads=1, seed=3, distill=False
)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, lengths, y = synthetic(8, seed=1)
    xt, lt, yt = synthetic(4, seed=2)
    path = tmp_path_factory.mktemp("npz") / "tiny.npz"
    np.savez(path, X=x, lengths=lengths, y=y, X_test=xt, lengths_test=lt, y_test=yt)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_npz: Path) -> BehaviorCheckpoint:
    cfg = TrainConfig(**{**TINY.to_dict(), "normal_labels": ["standing", "walking"]})
    return train(load_npz(tiny_npz), cfg)


def test_lstm_outputs_one_logit_per_label_and_ignores_padding():
    torch.manual_seed(0)
    net = BehaviorLSTM(LSTMConfig(input_dim=3, num_classes=4, hidden_size=8, num_layers=2)).eval()
    seq = torch.randn(1, 7, 3)
    padded = torch.cat([seq, torch.zeros(1, 5, 3)], dim=1)
    with torch.no_grad():
        alone = net(seq, torch.tensor([7]))
        with_padding = net(padded, torch.tensor([7]))
    assert alone.shape == (1, 4)
    torch.testing.assert_close(alone, with_padding)
    # the unpacked fast path (all sequences full length) matches the packed path
    batch = torch.cat([seq, torch.randn(1, 7, 3)])
    with torch.no_grad():
        fast = net(batch, torch.tensor([7, 7]))
        ragged_batch = torch.cat([batch, torch.randn(1, 7, 3)])
        packed = net(ragged_batch, torch.tensor([7, 7, 4]))[:2]
    torch.testing.assert_close(fast, packed)


def test_classifier_probabilities_sum_to_one_for_ragged_batch():
    nets = [BehaviorLSTM(LSTMConfig(input_dim=2, num_classes=3, hidden_size=4)) for _ in range(2)]
    clf = BehaviorClassifier(nets, mean=np.zeros(2), std=np.ones(2))
    seqs = [np.ones((5, 2)), np.ones((2, 2)), np.zeros((9, 2))]
    probs = clf.predict_proba(seqs)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    # a sequence scores the same alone as inside a ragged batch
    np.testing.assert_allclose(clf.predict_proba([seqs[1]])[0], probs[1], rtol=1e-5, atol=1e-6)
    x, lengths = pad_sequences(seqs, 2)
    assert x.shape == (3, 9, 2) and lengths.tolist() == [5, 2, 9]


def test_training_on_tiny_data_learns_and_records_metadata(tiny_checkpoint: BehaviorCheckpoint):
    ck = tiny_checkpoint
    assert ck.labels == LABELS and ck.normal_labels == ["standing", "walking"]
    assert ck.feature_dim == 3 and len(ck.state_dicts) == 2
    assert 0.01 <= ck.threshold <= 0.99
    assert ck.metrics["test"]["accuracy"] >= 0.9
    assert ck.metrics["test"]["anomaly"]["recall"] == 1.0
    assert ck.data_fingerprint.startswith("sha256:")
    assert "validation_out_of_fold" in ck.metrics and ck.training["folds_used"] == 2


def test_distilled_student_is_one_smaller_network_with_the_teachers_threshold(tiny_npz: Path):
    cfg = TrainConfig(
        **{
            **TINY.to_dict(),
            "normal_labels": ["standing", "walking"],
            "distill": True,
            "student_hidden_size": 4,
            "student_epochs": 25,
        }
    )
    ck = train(load_npz(tiny_npz), cfg)
    assert len(ck.state_dicts) == 1 and ck.config.hidden_size == 4
    assert ck.metrics["test"]["accuracy"] >= 0.9  # the student's
    assert "teacher_test" in ck.metrics and "-student-" in ck.model_version
    # Served as usual: one network, same labels, probabilities that sum to one.
    test = load_npz(tiny_npz).test
    probs = ck.build_classifier().predict_proba_padded(test.x[:3], test.lengths[:3])
    assert probs.shape == (3, len(LABELS)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_model_device_auto_picks_cuda_only_when_torch_sees_it(monkeypatch):
    from app.ml import device as dev

    monkeypatch.setattr(dev, "cuda_available", lambda: False)
    assert dev.resolve_device("auto") == "cpu" and dev.resolve_device("cpu") == "cpu"
    assert dev.resolve_device("cuda") == "cpu"  # serving falls back with a warning
    with pytest.raises(dev.DeviceUnavailable):
        dev.resolve_device("cuda", strict=True)  # training was asked for a GPU it lacks
    monkeypatch.setattr(dev, "cuda_available", lambda: True)
    assert dev.resolve_device("auto") == "cuda" and dev.resolve_device("cpu") == "cpu"
    assert dev.batch_max_size(None, "cpu") == 64 and dev.batch_max_size(None, "cuda") == 256
    assert dev.batch_max_size(8, "cuda") == 8


def test_cli_refuses_cuda_training_without_a_gpu(
    tiny_npz: Path, tmp_path: Path, capsys, monkeypatch
):
    from app.ml import device as dev

    monkeypatch.setattr(dev, "cuda_available", lambda: False)
    rc = sentinel(
        [
            "train-behavior",
            "--data",
            str(tiny_npz),
            "--device",
            "cuda",
            "--out",
            str(tmp_path / "x.pt"),
        ]
    )
    assert rc == 2 and "MODEL_DEVICE=cuda" in capsys.readouterr().err


def test_training_is_reproducible_for_a_seed(tiny_npz: Path, tiny_checkpoint):
    cfg = TrainConfig(**{**TINY.to_dict(), "normal_labels": ["standing", "walking"]})
    again = train(load_npz(tiny_npz), cfg)
    assert again.model_version == tiny_checkpoint.model_version


def test_checkpoint_round_trip_gives_identical_predictions(tiny_checkpoint, tmp_path: Path):
    path = save_checkpoint(tiny_checkpoint, tmp_path / "m.pt")
    loaded = load_checkpoint(path)
    meta = loaded.metadata()
    assert meta["labels"] == LABELS and meta["threshold"] == pytest.approx(
        tiny_checkpoint.threshold
    )
    assert meta["model_version"] == tiny_checkpoint.model_version
    assert meta["metrics"]["test"]["accuracy"] == tiny_checkpoint.metrics["test"]["accuracy"]
    x, lengths, _ = synthetic(2, seed=9)
    before = tiny_checkpoint.build_classifier().predict_proba_padded(x, lengths)
    after = loaded.build_classifier().predict_proba_padded(x, lengths)
    np.testing.assert_allclose(before, after, rtol=1e-6)
    # weights_only-safe: the file holds only plain containers and tensors
    torch.load(path, weights_only=True)


class _Exploit:
    def __reduce__(self):
        return (print, ("code ran while loading",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a zip or pickle", "unreadable"),
        (None, "unreadable"),  # a pickle with code in it: refused by weights_only
        (b"", "unreadable"),
    ],
)
def test_corrupt_or_unsafe_checkpoint_is_refused(tmp_path: Path, content, reason):
    path = tmp_path / "bad.pt"
    if content is None:
        path.write_bytes(pickle.dumps({"format": "x", "payload": _Exploit()}))
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_checkpoint(path)


def test_foreign_or_missing_checkpoint_is_refused(tmp_path: Path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Sentinel behaviour checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_threshold_is_the_widest_gap_between_separable_scores():
    scores = np.array([0.02, 0.05, 0.1, 0.8, 0.9, 0.95])
    actual = np.array([False, False, False, True, True, True])
    assert choose_threshold(scores, actual) == pytest.approx(0.45)


def test_evaluate_reports_confusion_and_anomaly_precision_recall():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    m = evaluate(
        probs, ["jumping", "standing", "walking", "standing"], LABELS, ["standing", "walking"], 0.5
    )
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"]["rows_true_cols_pred"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m["anomaly"]["recall"] == 1.0 and m["anomaly"]["precision"] == 0.5


def test_npz_without_test_split_gets_a_stratified_hold_out(tmp_path: Path):
    x, _lengths, y = synthetic(8, seed=4)
    np.savez(tmp_path / "own.npz", X=x, y=y)  # no lengths: every sequence is full length
    ds = load_npz(tmp_path / "own.npz")
    assert len(ds.train) == 18 and len(ds.test) == 6
    assert sorted(set(ds.test.y)) == LABELS
    np.savez(tmp_path / "bad.npz", X=x[:, :, 0], y=y)
    with pytest.raises(DatasetError, match=r"\[N, T, F\]"):
        load_npz(tmp_path / "bad.npz")


def test_cli_trains_and_evaluates_a_users_npz(tiny_npz: Path, tmp_path: Path, capsys):
    out = tmp_path / "own.pt"
    rc = sentinel(
        [
            "train-behavior",
            "--data",
            str(tiny_npz),
            "--normal-labels",
            "standing,walking",
            "--epochs",
            "25",
            "--folds",
            "2",
            "--hidden-size",
            "8",
            "--student-hidden-size",
            "4",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and out.is_file()
    assert "test split" in capsys.readouterr().out
    rc = sentinel(["eval-behavior", "--checkpoint", str(out), "--data", str(tiny_npz)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "accuracy=" in printed and "macro-F1=" in printed and "confusion matrix" in printed
    assert "anomaly detection at threshold" in printed and "fingerprint matches" in printed


def test_cli_rejects_unknown_normal_labels(tiny_npz: Path, tmp_path: Path, capsys):
    rc = sentinel(
        [
            "train-behavior",
            "--data",
            str(tiny_npz),
            "--normal-labels",
            "sleeping",
            "--out",
            str(tmp_path / "x.pt"),
        ]
    )
    assert rc == 2
    assert "none of the normal labels" in capsys.readouterr().err
