"""The job functions, by name. Each calls existing services; the runner adds retries."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from app.core.errors import ValidationFailed
from app.core.settings import ModelSettings
from app.services.document_files import DocumentUnreadable, ExtractedDocument, extract, split_pages
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.job_archive import inspect_archive, read_entry
from app.services.jobs import JobContext, JobFunction, JobName, PermanentJobError
from app.services.knowledge import CONTENT_MAX, KnowledgeService, ReindexReport
from app.services.model_registry import ModelRegistry, NotEnoughFeedback, RetrainResult
from app.services.retention import RetentionService

TITLE_MAX = 300


@dataclass
class SkippedFile:
    """A file the import could not use, and why."""

    name: str
    reason: str


@dataclass
class ImportResult:
    """What a bulk import stored."""

    files: int
    documents: int
    chunks: int
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass
class TrainResult:
    """A trained checkpoint (not served until an operator points MODEL_CHECKPOINT_PATH at it)."""

    model_version: str
    checkpoint_path: str
    threshold: float
    test_accuracy: float
    test_macro_f1: float
    train_seconds: float


@dataclass
class SummariesResult:
    """Closed episodes summarised into the events collection."""

    episodes: int


@dataclass
class RetentionResult:
    """The retention service's report, or why it did not run."""

    ran: bool
    dry_run: bool
    report: dict[str, Any] | None = None
    note: str | None = None


class JobFunctionRegistry:
    """Maps job names to functions bound to the services they call."""

    def __init__(
        self,
        knowledge: Callable[[], KnowledgeService],
        event_knowledge: EventKnowledgeIndexer,
        model_settings: ModelSettings,
        import_max_files: int,
        import_max_unpacked_bytes: int,
        retention: Callable[[], RetentionService],
        models: ModelRegistry,
    ) -> None:
        self.models = models
        self.knowledge = knowledge
        self.retention_service = retention
        self.event_knowledge = event_knowledge
        self.model_settings = model_settings
        self.import_max_files = import_max_files
        self.import_max_unpacked_bytes = import_max_unpacked_bytes
        self._functions: dict[str, JobFunction] = {
            JobName.REINDEX: self.reindex,
            JobName.IMPORT: self.import_documents,
            JobName.TRAIN: self.train_model,
            JobName.RETRAIN: self.retrain_model,
            JobName.SUMMARIES: self.episode_summaries,
            JobName.RETENTION: self.retention,
        }

    def names(self) -> list[str]:
        return sorted(self._functions)

    def get(self, name: str) -> JobFunction | None:
        return self._functions.get(name)

    # -- knowledge -----------------------------------------------------------------------

    async def reindex(self, ctx: JobContext) -> ReindexReport:
        await ctx.progress(0, 1, "rebuilding the vector index from the database")
        result = await self.knowledge().reindex()
        await ctx.progress(1, 1, f"{result.documents} documents, {result.chunks} chunks")
        return result

    async def import_documents(self, ctx: JobContext) -> ImportResult:
        data = await ctx.payload()
        entries = inspect_archive(data, self.import_max_files, self.import_max_unpacked_bytes)
        service = self.knowledge()
        # A retry resumes after the last file stored (the checkpoint), not from the start.
        state = ctx.checkpoint or {}
        start = int(state.get("next", 0))
        documents, chunks = int(state.get("documents", 0)), int(state.get("chunks", 0))
        skipped = [SkippedFile(**s) for s in state.get("skipped", [])]
        total = len(entries)
        for index in range(start, total):
            entry = entries[index]
            try:
                raw = read_entry(data, entry.name)
            except Exception as exc:  # encrypted or damaged entry: skip it, keep the rest
                skipped.append(SkippedFile(entry.name, f"unreadable entry ({type(exc).__name__})"))
                raw = None
            found = await self._extract(entry.name, raw, skipped) if raw is not None else None
            if found is not None:
                # The file name, as before: an import's titles must not depend on its headings.
                title = PurePosixPath(entry.name).stem[:TITLE_MAX] or "untitled"
                parts = split_pages(found, CONTENT_MAX)
                for n, (part, pages) in enumerate(parts, 1):
                    doc = await service.create(
                        title if len(parts) == 1 else f"{title} ({n}/{len(parts)})"[:TITLE_MAX],
                        part,
                        entry.name[:500],
                        {"import_job": str(ctx.job_id), **pages},
                        True,
                    )
                    documents += 1
                    chunks += doc.chunk_count
            await ctx.save_checkpoint(
                {
                    "next": index + 1,
                    "documents": documents,
                    "chunks": chunks,
                    "skipped": [s.__dict__ for s in skipped],
                },
                (index + 1) / total,
                f"{index + 1}/{total} files, {chunks} chunks",
            )
        return ImportResult(files=total, documents=documents, chunks=chunks, skipped=skipped)

    async def _extract(
        self, name: str, raw: bytes, skipped: list[SkippedFile]
    ) -> ExtractedDocument | None:
        """The file's text (headings, table rows, page starts), or None with the file recorded
        as skipped and why (encrypted, damaged, no text …)."""
        try:
            return await asyncio.to_thread(extract, name, raw)
        except DocumentUnreadable as exc:
            skipped.append(SkippedFile(name, exc.reason))
            return None

    # -- behaviour model -----------------------------------------------------------------

    async def train_model(self, ctx: JobContext) -> TrainResult:
        from app.ml.checkpoint import save_checkpoint
        from app.ml.data import DatasetError, load_npz
        from app.ml.training import TrainConfig, train

        data = await ctx.payload()
        params = ctx.params
        cfg = TrainConfig(seed=int(params.get("seed", 7)), threads=int(params.get("threads", 1)))
        for key in ("epochs", "folds", "hidden_size"):
            if params.get(key) is not None:
                setattr(cfg, key, int(params[key]))
        if params.get("normal_labels"):
            cfg.normal_labels = list(params["normal_labels"])
        loop = asyncio.get_running_loop()
        steps = {"done": 0}

        def log(message: str) -> None:  # called from the training thread
            if message.startswith("member "):
                steps["done"] += 1
            total = cfg.folds + 1
            asyncio.run_coroutine_threadsafe(
                ctx.progress(min(steps["done"], total - 1), total, message[:300]), loop
            )

        def run() -> TrainResult:
            with tempfile.TemporaryDirectory(prefix="sentinel-train-") as tmp:
                path = Path(tmp) / "data.npz"
                path.write_bytes(data)
                try:
                    dataset = load_npz(path, seed=cfg.seed)
                    ckpt = train(dataset, cfg, log=log)
                except (DatasetError, ValueError) as exc:
                    raise PermanentJobError(str(exc).replace(str(path), "the upload")) from exc
            out = (
                Path(self.model_settings.checkpoint_path).parent
                / "trained"
                / f"behavior_lstm-{ctx.job_id}.pt"
            )
            save_checkpoint(ckpt, out)
            test = ckpt.metrics["test"]
            return TrainResult(
                model_version=ckpt.model_version,
                checkpoint_path=str(out),
                threshold=float(ckpt.threshold),
                test_accuracy=float(test["accuracy"]),
                test_macro_f1=float(test["macro_f1"]),
                train_seconds=float(ckpt.training["train_seconds"]),
            )

        result = await asyncio.to_thread(run)
        await ctx.progress(1, 1, f"wrote {result.model_version}")
        return result

    async def retrain_model(self, ctx: JobContext) -> RetrainResult:
        """Fine-tune the active version on the base data plus operators' labels; the result
        is a candidate version (activate it through the gate)."""
        params = ctx.params
        loop = asyncio.get_running_loop()
        epochs = int(params["epochs"]) if params.get("epochs") else None
        total = epochs or 30

        def log(message: str) -> None:  # called from the training thread
            done = 0
            if message.strip().startswith("epoch "):
                with contextlib.suppress(ValueError, IndexError):
                    done = int(message.split()[1].split("/")[0])
            asyncio.run_coroutine_threadsafe(
                ctx.progress(min(done, total - 1), total, message.strip()[:300]), loop
            )

        await ctx.progress(0, total, "reading labelled episodes")
        try:
            result = await self.models.retrain(
                source_ids=params.get("source_ids") or None,
                epochs=epochs,
                created_by=params.get("requested_by"),
                log=log,
            )
        except (NotEnoughFeedback, ValidationFailed) as exc:
            raise PermanentJobError(getattr(exc, "message", None) or str(exc)) from exc
        await ctx.progress(total, total, f"candidate {result.model_version}")
        return result

    # -- events --------------------------------------------------------------------------

    async def episode_summaries(self, ctx: JobContext) -> SummariesResult:
        await ctx.progress(0, 1, "summarising closed episodes")
        episodes = await self.event_knowledge.rebuild()
        await ctx.progress(1, 1, f"{episodes} episodes summarised")
        return SummariesResult(episodes=episodes)

    # -- retention -----------------------------------------------------------------------

    async def retention(self, ctx: JobContext) -> RetentionResult:
        """Run the retention service once (`dry_run` only reports); one process at a time,
        so `ran` is False when another process holds the retention lock."""
        dry_run = bool(ctx.params.get("dry_run", True))
        report = await self.retention_service().run(dry_run)
        return RetentionResult(ran=report.ran, dry_run=dry_run, report=_plain(report))


def _plain(value: Any) -> dict[str, Any] | None:
    import dataclasses

    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return value
    return {"value": str(value)}
