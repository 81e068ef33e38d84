"""Bare FastAPI anchors for `bench/hotpath.py`: the same work as Sentinel's hot paths, nothing else.

Run by the benchmark under the same uvicorn settings as Sentinel (same venv, one worker):

- `GET /live`: a small dict (vs `GET /health/live`);
- `POST /event`: parse the body into Sentinel's own `EventIn` model (vs `POST /api/v1/events`);
- `POST /event/insert`: the same parse plus one asyncpg INSERT, committed before the 202;
- `POST /analyze`: parse Sentinel's `AnalyzeRequest` (vs `POST /api/v1/behavior/analyze`);
- `POST /analyze/model` (with `ANCHOR_MODEL=1`): the same parse, then the same checkpoint's
  forward through the app's own `InferenceBatcher` (same `MODEL_CHECKPOINT_PATH`,
  `BATCH_MAX_SIZE`, `BATCH_MAX_WAIT_MS`, `TORCH_NUM_THREADS`, `MODEL_DEVICE`), answering the
  same fields as Sentinel's `AnalysisOut`: the "bare model" anchor (no auth, no validation
  messages, no Sentinel middleware);
- `POST /event/upsert` and `POST /event/upsert-batch`: the parse plus `INSERT … ON CONFLICT
  (id) DO NOTHING RETURNING id`, telling each event whether it was new (vs a repeated
  `event_id` on `POST /api/v1/events` and `/events/batch`; `bench/retries.py`).

`ANCHOR_DATABASE_URL` is a plain `postgresql://` URL; the table is created on start.
`ANCHOR_MODEL=1` loads the behaviour model on start (torch is imported only then).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
from fastapi import FastAPI

from app.core.settings import ModelSettings
from app.schemas.behavior import AnalyzeRequest
from app.schemas.events import EventIn

_DDL = """
CREATE TABLE IF NOT EXISTS anchor_events (
    id uuid PRIMARY KEY,
    source_id varchar(128) NOT NULL,
    event_type varchar(16) NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    probs jsonb,
    meta jsonb
)
"""
_INSERT = (
    "INSERT INTO anchor_events (id, source_id, event_type, occurred_at, received_at, probs, meta)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


_UPSERT = _INSERT + " ON CONFLICT (id) DO NOTHING RETURNING id"


def _row(body: EventIn, now: datetime) -> tuple[object, ...]:
    return (
        body.event_id or uuid.uuid4(),
        body.source_id,
        body.event_type.value,
        body.timestamp,
        now,
        json.dumps(body.probs) if body.probs is not None else None,
        json.dumps(body.metadata) if body.metadata is not None else None,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("ANCHOR_DATABASE_URL")
    pool = None
    if url:
        # Same pool bounds as Sentinel's defaults (DB_POOL_SIZE 10 + DB_MAX_OVERFLOW 10).
        pool = await asyncpg.create_pool(url, min_size=10, max_size=20)
        async with pool.acquire() as conn:
            await conn.execute(_DDL)
    app.state.pool = pool
    batcher = None
    if os.environ.get("ANCHOR_MODEL") == "1":
        from app.ml.batcher import InferenceBatcher

        batcher = InferenceBatcher(ModelSettings())
        await batcher.start()
        if not batcher.loaded:
            raise RuntimeError(f"anchor: the behaviour model did not load: {batcher.load_error}")
    app.state.batcher = batcher
    # Sentinel's process setting: what start-up loaded stays out of the cyclic GC.
    gc.freeze()
    yield
    if batcher is not None:
        await batcher.stop()
    if pool is not None:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/event", status_code=202)
async def event(body: EventIn) -> dict[str, object]:
    return {"id": str(body.event_id or uuid.uuid4()), "episode_id": None, "duplicate": False}


@app.post("/event/insert", status_code=202)
async def event_insert(body: EventIn) -> dict[str, object]:
    event_id = body.event_id or uuid.uuid4()
    async with app.state.pool.acquire() as conn:
        await conn.execute(
            _INSERT,
            event_id,
            body.source_id,
            body.event_type.value,
            body.timestamp,
            datetime.now(UTC),
            json.dumps(body.probs) if body.probs is not None else None,
            json.dumps(body.metadata) if body.metadata is not None else None,
        )
    return {"id": str(event_id), "episode_id": None, "duplicate": False}


@app.post("/analyze")
async def analyze(body: AnalyzeRequest) -> dict[str, object]:
    return {"frames": len(body.sequence or []), "source_id": body.source_id}


@app.post("/analyze/model")
async def analyze_model(body: AnalyzeRequest) -> dict[str, object]:
    """Sentinel's analyze minus Sentinel: parse, one forward in the shared micro-batch, the
    same answer fields (`AnalysisOut`)."""
    batcher = app.state.batcher
    sequences = [body.sequence] if body.sequence is not None else body.sequences or []
    predictions = await batcher.predict([np.asarray(s, dtype=np.float32) for s in sequences])
    results = [_verdict(p, batcher.threshold_of(p.checkpoint), body.source_id) for p in predictions]
    if body.sequence is not None:
        return results[0]
    return {"results": results, "source_id": body.source_id}


def _verdict(prediction: Any, threshold: float, source_id: str | None) -> dict[str, object]:
    ckpt = prediction.checkpoint
    scores = {label: float(p) for label, p in zip(ckpt.labels, prediction.probs, strict=True)}
    normal_labels = set(ckpt.normal_labels)
    normal = min(1.0, max(0.0, sum(p for label, p in scores.items() if label in normal_labels)))
    return {
        "is_anomaly": 1.0 - normal >= threshold,
        "normal_score": normal,
        "anomaly_score": 1.0 - normal,
        "threshold": threshold,
        "top_label": max(scores, key=scores.__getitem__),
        "labels": list(ckpt.labels),
        "scores": scores,
        "model_version": ckpt.model_version,
        "inference_ms": round(prediction.ms, 3),
        "source_id": source_id,
    }


@functools.cache
def _upsert_many(n: int) -> str:
    """One statement for a batch: n rows of VALUES, stored ids skipped, new ones returned."""
    values = ", ".join(
        "(" + ", ".join(f"${7 * i + j}" for j in range(1, 8)) + ")" for i in range(n)
    )
    return (
        "INSERT INTO anchor_events (id, source_id, event_type, occurred_at, received_at, probs,"
        f" meta) VALUES {values} ON CONFLICT (id) DO NOTHING RETURNING id"
    )


@app.post("/event/upsert", status_code=202)
async def event_upsert(body: EventIn) -> dict[str, object]:
    row = _row(body, datetime.now(UTC))
    async with app.state.pool.acquire() as conn:
        new = await conn.fetchval(_UPSERT, *row)
    return {"id": str(row[0]), "episode_id": None, "duplicate": new is None}


@app.post("/event/upsert-batch", status_code=202)
async def event_upsert_batch(body: dict[str, list[EventIn]]) -> dict[str, object]:
    now = datetime.now(UTC)
    rows = [_row(e, now) for e in body["events"]]
    async with app.state.pool.acquire() as conn:
        new = {r["id"] for r in await conn.fetch(_upsert_many(len(rows)), *sum(rows, ()))}
    results = [{"id": str(r[0]), "duplicate": r[0] not in new} for r in rows]
    return {"accepted": len(new), "duplicates": len(rows) - len(new), "results": results}
