"""Where torch runs: `MODEL_DEVICE=auto|cpu|cuda` for analyze, training and the embedder."""

from __future__ import annotations

from enum import StrEnum

from loguru import logger

# Micro-batch limits per device: a CPU thread is saturated by ~64 sequences of 100 frames;
# a GPU keeps gaining up to a few hundred (measured on an H100: 59.6k seq/s at 64, 217k at 256).
DEFAULT_BATCH_MAX_SIZE = {"cpu": 64, "cuda": 256}


class DeviceChoice(StrEnum):
    """The `MODEL_DEVICE` setting."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class DeviceUnavailable(RuntimeError):
    """`MODEL_DEVICE=cuda` on a machine where torch sees no CUDA device."""


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(choice: str | DeviceChoice, *, strict: bool = False) -> str:
    """`auto` → `cuda` when torch sees a GPU, else `cpu`.

    An explicit `cuda` without a GPU raises `DeviceUnavailable` when `strict` (training: the
    user asked for it), and otherwise falls back to the CPU with a warning (serving keeps
    answering).
    """
    choice = DeviceChoice(str(choice).lower())
    if choice is DeviceChoice.CPU:
        return "cpu"
    if cuda_available():
        return "cuda"
    if choice is DeviceChoice.CUDA:
        message = "MODEL_DEVICE=cuda but torch sees no CUDA device (CPU-only build or no GPU)"
        if strict:
            raise DeviceUnavailable(message)
        logger.warning("{}; running on the CPU", message)
    return "cpu"


def batch_max_size(configured: int | None, device: str) -> int:
    """`BATCH_MAX_SIZE` when set, else the device's default."""
    return configured if configured is not None else DEFAULT_BATCH_MAX_SIZE[device]
