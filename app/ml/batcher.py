"""The serving side of the behaviour model: load once, coalesce concurrent requests.

`InferenceBatcher` is a lifecycle component. `start()` loads the checkpoint (a missing or
corrupt file is logged and reported by `health()`, never fatal) and starts one collector
task. Callers `await predict(arrays)`; each sequence becomes a queue item with a future.
The collector takes the first waiting item, gathers whatever else is queued and — when the
previous batch was shared, i.e. under concurrent load — waits up to `BATCH_MAX_WAIT_MS` for
more, up to `BATCH_MAX_SIZE` (default 64 on the CPU, 256 on CUDA; `MODEL_DEVICE`), and runs one padded forward pass in a dedicated single worker
thread (torch limited to `TORCH_NUM_THREADS`), so the event loop never runs torch.
While a batch runs, new requests queue up and form the next batch.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from loguru import logger

from app.core.errors import Unavailable
from app.core.health import ComponentHealth
from app.core.metrics import INFERENCE_BATCH_SIZE, INFERENCE_LATENCY
from app.core.settings import ModelSettings
from app.ml.checkpoint import BehaviorCheckpoint, CheckpointError, load_checkpoint
from app.ml.device import batch_max_size, resolve_device
from app.ml.model import BehaviorClassifier, pad_sequences


class ModelHealth(ComponentHealth):
    """`/health` component `model`: whether a checkpoint is loaded, and what it is."""

    loaded: bool
    checkpoint_path: str | None = None
    version: str | None = None
    feature_dim: int | None = None
    labels: list[str] | None = None
    normal_labels: list[str] | None = None
    threshold: float | None = None
    device: str | None = None
    batch_max_size: int | None = None
    queued: int | None = None


@dataclass(frozen=True)
class ServedModel:
    """A checkpoint and the classifier built from it: swapped as one, so a batch never mixes
    two versions and every answer names the version that produced it."""

    checkpoint: BehaviorCheckpoint
    classifier: BehaviorClassifier


@dataclass(frozen=True)
class Prediction:
    """Probabilities [C] for one sequence, the batch's forward milliseconds, and the model."""

    probs: np.ndarray
    ms: float
    checkpoint: BehaviorCheckpoint


@dataclass
class _Item:
    sequence: np.ndarray
    future: asyncio.Future[Prediction]


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


class InferenceBatcher:
    """Owns the loaded model and the micro-batching loop around it."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.load_error: str | None = None
        # The checkpoint file the process started with (the registry's first version).
        self.file_checkpoint: BehaviorCheckpoint | None = None
        self._served: ServedModel | None = None
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._accepting = False
        self.device = "cpu"

    @property
    def max_batch(self) -> int:
        """`BATCH_MAX_SIZE`, or the default for the device the model runs on."""
        return batch_max_size(self.settings.batch_max_size, self.device)

    @property
    def loaded(self) -> bool:
        return self._served is not None

    @property
    def started(self) -> bool:
        """True in a process that serves the model (a CLI or a worker never starts it)."""
        return self._executor is not None

    @property
    def checkpoint(self) -> BehaviorCheckpoint | None:
        """The version serving now (it may change between two reads: see `swap`)."""
        return self._served.checkpoint if self._served else None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="behavior-model",
            initializer=_set_torch_threads,
            initargs=(self.settings.torch_num_threads,),
        )
        loop = asyncio.get_running_loop()
        try:
            ckpt = await loop.run_in_executor(
                self._executor, load_checkpoint, self.settings.checkpoint_path
            )
            self.device = await loop.run_in_executor(
                self._executor, resolve_device, self.settings.device
            )
            classifier = await loop.run_in_executor(
                self._executor, ckpt.build_classifier, self.device
            )
            self.file_checkpoint = ckpt
            self._served = ServedModel(ckpt, classifier)
            logger.info(
                "behaviour model {} loaded on {} ({} labels, {} features, threshold {:.3f}, "
                "batches up to {})",
                ckpt.model_version,
                self.device,
                len(ckpt.labels),
                ckpt.feature_dim,
                self.threshold,
                self.max_batch,
            )
        except CheckpointError as exc:
            self.load_error = str(exc)
            logger.error(
                "behaviour model unavailable: {} (analyze answers 503; train one with "
                "`sentinel train-behavior` or set MODEL_CHECKPOINT_PATH)",
                exc,
            )
        self._queue = asyncio.Queue()
        self._accepting = True
        self._task = asyncio.create_task(self._collect(), name="behavior-batcher")

    async def stop(self) -> None:
        """Stop accepting work, finish everything already queued, then release the thread."""
        self._accepting = False
        if self._queue is not None and self._task is not None:
            await self._queue.put(None)
            try:
                await self._task
            finally:
                self._task = None
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def swap(self, ckpt: BehaviorCheckpoint) -> None:
        """Serve `ckpt` from the next batch on. The classifier is built on the model thread
        (between batches); a batch already running finishes on the version it started with."""
        if self._executor is None:
            raise self.unavailable()
        classifier = await asyncio.get_running_loop().run_in_executor(
            self._executor, ckpt.build_classifier, self.device
        )
        previous = self.checkpoint
        self._served = ServedModel(ckpt, classifier)
        self.load_error = None
        logger.info(
            "behaviour model now {} (was {})",
            ckpt.model_version,
            previous.model_version if previous else "none",
        )

    @property
    def threshold(self) -> float:
        return self.threshold_of(self.checkpoint)

    def threshold_of(self, ckpt: BehaviorCheckpoint | None) -> float:
        """`ANOMALY_THRESHOLD` when set, else the version's own threshold."""
        if self.settings.anomaly_threshold is not None:
            return float(self.settings.anomaly_threshold)
        return ckpt.threshold if ckpt else 0.5

    def unavailable(self) -> Unavailable:
        reason = self.load_error or "the model server is not running"
        return Unavailable(
            f"The behaviour model is not loaded ({reason}). Train one with "
            "`sentinel train-behavior` or point MODEL_CHECKPOINT_PATH at a checkpoint, "
            "then restart.",
            code="model_unavailable",
            headers={"Retry-After": "30"},
        )

    async def predict(self, sequences: list[np.ndarray]) -> list[Prediction]:
        """A `Prediction` for each [T, F] array, in order."""
        if not self.loaded or not self._accepting or self._queue is None:
            raise self.unavailable()
        loop = asyncio.get_running_loop()
        items = [_Item(seq, loop.create_future()) for seq in sequences]
        for item in items:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(item.future for item in items)))

    async def _collect(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        max_size = self.max_batch
        max_wait = self.settings.batch_max_wait_ms / 1000
        stopping = False
        last_size = 0
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            # Wait to fill a batch only under concurrent load (the last batch was shared):
            # a lone caller would just pay the wait. Otherwise take what is queued now.
            wait = max_wait if last_size > 1 else 0.0
            deadline = loop.time() + wait
            while len(batch) < max_size:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True  # finish this batch, then exit
                    break
                batch.append(item)
            last_size = len(batch)
            await self._run(batch)

    async def _run(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # skip cancelled callers
        if not live:
            return
        assert self._executor is not None and self._served is not None
        served = self._served  # one version for the whole batch
        dim = served.classifier.feature_dim
        for item in live:
            if item.sequence.shape[1] != dim:  # validated against a version swapped out since
                item.future.set_exception(
                    Unavailable("The behaviour model changed while this request waited; retry")
                )
        live = [item for item in live if not item.future.done()]
        if not live:
            return
        try:
            probs, ms = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._forward, served.classifier, [item.sequence for item in live]
            )
        except Exception as exc:
            logger.opt(exception=exc).error("behaviour model forward pass failed")
            for item in live:
                if not item.future.done():
                    item.future.set_exception(
                        Unavailable("The behaviour model failed on this batch; retry")
                    )
            return
        for item, row in zip(live, probs, strict=True):
            if not item.future.done():
                item.future.set_result(Prediction(row, ms, served.checkpoint))

    @staticmethod
    def _forward(
        classifier: BehaviorClassifier, sequences: list[np.ndarray]
    ) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        x, lengths = pad_sequences(sequences, classifier.feature_dim)
        probs = classifier.predict_proba_padded(x, lengths)
        elapsed = time.perf_counter() - started
        INFERENCE_LATENCY.observe(elapsed)
        INFERENCE_BATCH_SIZE.observe(len(sequences))
        return probs, elapsed * 1000

    async def health(self) -> ModelHealth:
        ckpt = self.checkpoint
        if ckpt is None:
            return ModelHealth(
                status="unavailable",
                loaded=False,
                error=self.load_error or "not started",
                checkpoint_path=self.settings.checkpoint_path,
            )
        return ModelHealth(
            status="healthy",
            loaded=True,
            version=ckpt.model_version,
            feature_dim=ckpt.feature_dim,
            labels=list(ckpt.labels),
            normal_labels=list(ckpt.normal_labels),
            threshold=self.threshold_of(ckpt),
            device=self.device,
            batch_max_size=self.max_batch,
            queued=self._queue.qsize() if self._queue else 0,
        )
