"""The behaviour sequence classifier: a (bi)LSTM over frame-wise feature vectors.

Variable-length input is handled with packing: padded frames never reach the LSTM, and
the pooled summary (last hidden state + masked mean + masked max of the outputs) only looks
at real frames. A `BehaviorClassifier` wraps one or more such networks (an ensemble of seeds
averaged in probability space) with the per-feature normalisation they were trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class LSTMConfig:
    """Architecture knobs; stored in the checkpoint so it can rebuild the network."""

    input_dim: int
    num_classes: int
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.2
    bidirectional: bool = True

    def to_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)


class BehaviorLSTM(nn.Module):
    """LSTM encoder + pooled summary + linear head → one logit per label."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            input_size=config.input_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        directions = 2 if config.bidirectional else 1
        width = config.hidden_size * directions
        self.dropout = nn.Dropout(config.dropout)
        # last hidden state (all directions) + masked mean + masked max of the outputs
        self.head = nn.Linear(width * 3, config.num_classes)

    def _last(self, h_n: torch.Tensor, batch: int) -> torch.Tensor:
        """The top layer's final hidden state, all directions concatenated: [B, H·D]."""
        directions = 2 if self.config.bidirectional else 1
        last = h_n.view(self.config.num_layers, directions, batch, -1)[-1]
        return last.transpose(0, 1).reshape(batch, -1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`x` [B, T, F] zero-padded, `lengths` [B] (CPU int64) → logits [B, C]."""
        if bool((lengths == x.shape[1]).all()):
            # Fast path (fixed-size windows, the common case): no padding, so no packing;
            # packing costs about as much as the LSTM itself at batch 64 on CPU.
            out, (h_n, _) = self.lstm(x)
            return self.head(
                self.dropout(
                    torch.cat([self._last(h_n, x.shape[0]), out.mean(1), out.amax(1)], dim=-1)
                )
            )
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out_packed, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=x.shape[1])
        last = self._last(h_n, x.shape[0])
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None].to(x.device)
        mask = mask.unsqueeze(-1)
        mean = (out * mask).sum(1) / lengths.to(x.device).clamp(min=1).unsqueeze(-1)
        maxed = out.masked_fill(~mask, float("-inf")).amax(1)
        summary = torch.cat([last, mean, maxed], dim=-1)
        return self.head(self.dropout(summary))


def pad_sequences(
    sequences: Sequence[np.ndarray], feature_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stack [T_i, F] arrays into a zero-padded [B, T_max, F] array and their lengths."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    out = np.zeros((len(sequences), int(lengths.max()), feature_dim), dtype=np.float32)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq
    return out, lengths


class BehaviorClassifier:
    """An ensemble of `BehaviorLSTM`s plus the normalisation they expect (inference only)."""

    def __init__(
        self,
        networks: Sequence[BehaviorLSTM],
        mean: np.ndarray,
        std: np.ndarray,
        device: str = "cpu",
    ) -> None:
        if not networks:
            raise ValueError("a classifier needs at least one network")
        self.device = torch.device(device)
        self.networks = [net.to(self.device) for net in networks]
        for net in self.networks:
            net.eval()
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device)
        self.feature_dim = int(self.mean.shape[0])

    @torch.inference_mode()
    def predict_proba_padded(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] for a padded batch (raw, unnormalised features)."""
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        lt = torch.from_numpy(np.asarray(lengths, dtype=np.int64))  # stays on the CPU (packing)
        steps = torch.arange(xt.shape[1], device=self.device)
        mask = (steps[None, :] < lt.to(self.device)[:, None]).unsqueeze(-1)
        xt = ((xt - self.mean) / self.std) * mask  # padding stays exactly zero
        if len(self.networks) == 1:
            probs = self.networks[0](xt, lt).softmax(-1)
        else:
            probs = torch.stack([net(xt, lt).softmax(-1) for net in self.networks]).mean(0)
        return probs.cpu().numpy()

    def predict_proba(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities [B, C] for a list of [T_i, F] arrays."""
        x, lengths = pad_sequences(sequences, self.feature_dim)
        return self.predict_proba_padded(x, lengths)
