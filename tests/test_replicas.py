"""Two replicas, one worker, shared PostgreSQL, Redis and a Chroma server — as real processes.

The topology of the `replicas` compose profile, started here as processes: two `sentinel
serve` on free ports, one `sentinel worker`, `chroma run`, a fake Kakao and a fake LLM server on
loopback. It always uses the real PostgreSQL and Redis (TEST_DATABASE_URL / TEST_REDIS_URL, or
the local defaults) and FAILS when they are unreachable: shared state is the point of the test.
One topology is shared by every check in this module; each wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.database import run_migrations
from app.models.event import Event
from app.models.job import Job, JobState
from tests.conftest import SHARED_PG_URL, SHARED_REDIS_URL, clear_of_minute_edge
from tests.eventing import abnormal_episode, event, post
from tests.fakes.kakao import FakeKakao
from tests.fakes.llm import FakeLLMServer, Reply
from tests.live_server import _SCRUB_PREFIXES, ROOT, SENTINEL, LiveServer, free_port

CHROMA = Path(SENTINEL).with_name("chroma")
PRIMARY, LITE = "gemini-2.5-flash", "gemini-2.5-flash-lite"
START_TIMEOUT = 420.0  # three processes loading torch at once on a busy CI runner
RETENTION_INTERVAL = 2  # seconds per retention slot in these processes (default: an hour)


@dataclass
class Topology:
    """The running processes and the fakes they talk to."""

    a: httpx.AsyncClient
    b: httpx.AsyncClient
    worker: subprocess.Popen[bytes]
    worker_log: Path
    kakao: FakeKakao
    llm: FakeLLMServer
    redis_url: str
    prefix: str
    db_url: str

    @property
    def worker_name_suffix(self) -> str:
        return f":{self.worker.pid}"


def _pg_url() -> str:
    return SHARED_PG_URL


async def _create_database() -> tuple[str, str]:
    base = _pg_url()
    name = f"sentinel_replicas_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(base).set(database="postgres")
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"the replica test needs PostgreSQL at {admin_url!r}: {exc!r}")
    finally:
        await admin.dispose()
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


async def _drop_database(name: str) -> None:
    admin = create_async_engine(
        make_url(_pg_url()).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _check_redis(url: str) -> None:
    from redis import asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"the replica test needs Redis at {url}: {exc!r}")
    finally:
        await client.aclose()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
async def topology() -> AsyncIterator[Topology]:
    redis_url = SHARED_REDIS_URL
    await _check_redis(redis_url)
    db_name, db_url = await _create_database()
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-replicas-"))
    prefix = f"sentinel-replicas-{uuid.uuid4().hex[:8]}:"
    kakao, llm = FakeKakao(), FakeLLMServer().start()
    kakao.start()
    chroma = worker = None
    servers: list[LiveServer] = []
    try:
        await asyncio.to_thread(run_migrations, db_url)
        chroma_port = free_port()
        chroma_log = workdir / "chroma.log"
        with open(chroma_log, "wb") as log:
            chroma = subprocess.Popen(
                [
                    str(CHROMA),
                    "run",
                    "--path",
                    str(workdir / "chroma"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(chroma_port),
                ],
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await asyncio.to_thread(
            _wait_http, f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma, chroma_log, 120
        )
        env = {
            "DATABASE_URL": db_url,
            "DB_MIGRATE_ON_START": "false",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(chroma_port),
            "CHROMA_COLLECTION": "replicas",
            "KAKAO_API_BASE_URL": kakao.url,
            "KAKAO_AUTH_BASE_URL": kakao.url,
            "KAKAO_ACCESS_TOKEN": "access-1",
            "KAKAO_REFRESH_TOKEN": "refresh-1",
            "KAKAO_REST_API_KEY": FakeKakao.REST_API_KEY,
            "ALERT_CHANNELS": "kakao",
            "DATA_ENCRYPTION_KEY": "replicas-test-encryption-key-0123456789",
            "ALERT_DISPATCH_INTERVAL_SECS": "0.2",
            "GEMINI_API_KEY": "test-gemini-key",
            "GEMINI_BASE_URL": llm.url,
            "RAG_PRIMARY_MODEL": PRIMARY,
            "RAG_LLM_FALLBACK_MODELS": LITE,
            "OPENAI_API_KEY": "",
            "LLM_TIMEOUT_SECS": "5",
            "LLM_BACKOFF_BASE_SECS": "0.01",
            "LLM_BACKOFF_MAX_SECS": "0.05",
            "RATE_LIMIT_ENABLED": "true",
            "RATE_LIMIT_AUTH": "5/minute",
            "JOB_WEB_CONSUMES": "false",
            "JOB_RETRY_BASE_SECS": "0.1",
            "RETENTION_INTERVAL_SECS": str(RETENTION_INTERVAL),
        }
        servers = [LiveServer(env), LiveServer(env)]
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
        worker_log = workdir / "worker.log"
        with open(worker_log, "wb") as log:
            worker = subprocess.Popen(
                [str(SENTINEL), "worker"],
                cwd=workdir,
                env={**base, **servers[0].env, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await asyncio.gather(*(asyncio.to_thread(s.start, START_TIMEOUT) for s in servers))
        async with (
            httpx.AsyncClient(base_url=servers[0].url, timeout=60) as a,
            httpx.AsyncClient(base_url=servers[1].url, timeout=60) as b,
        ):
            top = Topology(a, b, worker, worker_log, kakao, llm, redis_url, prefix, db_url)
            deadline = time.monotonic() + START_TIMEOUT
            while (await b.get("/api/v1/admin/queues")).json()["workers"] < 1:
                assert worker.poll() is None, worker_log.read_text()[-4000:]
                assert time.monotonic() < deadline, "the worker never announced itself"
                await asyncio.sleep(0.5)
            # The first embedding loads the model (slow on a busy machine): warm both replicas.
            await asyncio.gather(
                *(
                    c.post("/api/v1/rag/ask", json={"question": "warm up"}, timeout=START_TIMEOUT)
                    for c in (a, b)
                )
            )
            yield top
    finally:
        for server in servers:
            server.stop()
        _stop(worker)
        _stop(chroma)
        kakao.stop()
        llm.stop()
        from redis import asyncio as aioredis

        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await _drop_database(db_name)
        shutil.rmtree(workdir, ignore_errors=True)


async def _ask(client: httpx.AsyncClient, question: str) -> dict:
    r = await client.post("/api/v1/rag/ask", json={"question": question})
    assert r.status_code == 200, r.text
    return r.json()


async def test_document_written_through_one_replica_is_answered_through_the_other(topology):
    r = await topology.a.post(
        "/api/v1/knowledge/docs",
        json={
            "title": "Fall response",
            "content": "When a fall alert fires, call the resident within 2 minutes.",
        },
    )
    assert r.status_code == 201, r.text
    body = await _ask(topology.b, "How fast must we call after a fall alert?")
    assert r.json()["id"] in [s["doc_id"] for s in body["sources"]]


async def test_llm_cooldown_set_through_one_replica_holds_on_the_other(topology):
    topology.llm.reset()
    topology.llm.script(PRIMARY, Reply.quota_per_day())
    await _ask(topology.a, "Whom do we call after a fall?")  # primary 429 → cooldown in Redis
    body = await _ask(topology.b, "How fast must we call?")
    assert body["model"] == LITE
    assert body["attempts"][0]["outcome"] == "skipped_cooling"
    assert topology.llm.calls[PRIMARY] == 1


async def test_rate_limit_counted_through_one_replica_holds_on_the_other(topology):
    login = {"username": "nobody@example.com", "password": "wrong-password"}
    await clear_of_minute_edge()
    codes = [
        (await topology.a.post("/api/v1/auth/login", data=login)).status_code for _ in range(3)
    ]
    codes += [
        (await topology.b.post("/api/v1/auth/login", data=login)).status_code for _ in range(2)
    ]
    assert codes == [401] * 5
    r = await topology.b.post("/api/v1/auth/login", data=login)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert (await topology.a.post("/api/v1/auth/login", data=login)).status_code == 429


async def test_event_posted_to_one_replica_reaches_the_others_live_stream(topology):
    async def listen() -> dict:
        async with topology.b.stream("GET", "/api/v1/events/stream", params={"max_events": 1}) as r:
            name = None
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                    if name == "ready":
                        ready.set()
                elif line.startswith("data:") and name == "event":
                    return json.loads(line.split(":", 1)[1])
        raise AssertionError("stream ended without an event")

    ready = asyncio.Event()
    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.3)  # the Redis subscription follows the ready message
    sent = await post(topology.a, event("PROBS", "cam-replica", probs={"normal": 0.9, "fall": 0.1}))
    received = await asyncio.wait_for(listener, 10)
    assert received["id"] == sent["id"]


async def test_abnormal_episode_alerts_once_with_two_dispatchers(topology):
    topology.kakao.reset()
    await abnormal_episode(topology.a, "cam-replica-alert")
    deadline = time.monotonic() + 30
    while not topology.kakao.memos:
        assert time.monotonic() < deadline, "no Kakao memo within 30 s"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # both dispatchers had time to (wrongly) send it again
    assert len(topology.kakao.memos) == 1
    alerts = (
        await topology.b.get("/api/v1/alerts", params={"source_id": "cam-replica-alert"})
    ).json()
    assert [a["status"] for a in alerts["items"]] == ["sent"]


async def test_job_queued_through_one_replica_runs_once_on_the_worker(topology):
    ids = []
    for client in (topology.a, topology.b, topology.a, topology.b):
        r = await client.post("/api/v1/admin/jobs/episode-summaries")
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    r = await topology.a.post("/api/v1/knowledge/reindex")
    assert r.status_code == 202
    ids.append(r.json()["id"])
    deadline = time.monotonic() + START_TIMEOUT
    for job_id in ids:
        while True:
            job = (await topology.b.get(f"/api/v1/jobs/{job_id}")).json()
            if job["state"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
            await asyncio.sleep(0.2)
        assert job["state"] == "succeeded", job
        assert job["attempts"] == 1
        assert job["worker"].endswith(topology.worker_name_suffix)  # the worker, not a replica
    assert job["result"]["documents"] >= 1  # the reindex saw the replicated document
    idle = {"depth": 0, "running": 0, "broker": {"waiting": 0, "unacknowledged": 0}}
    deadline = time.monotonic() + 30  # a scheduled retention job may be passing through
    while True:
        queues = (await topology.a.get("/api/v1/admin/queues")).json()
        assert queues["mode"] == "redis" and queues["workers"] == 1
        if {k: queues[k] for k in idle} == idle:
            break
        assert time.monotonic() < deadline, queues
        await asyncio.sleep(0.1)


async def test_silence_set_through_one_replica_holds_on_the_other(topology):
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await topology.a.post(
        "/api/v1/silences",
        json={"source_id": "cam-replica-quiet*", "until": until, "reason": "maintenance"},
    )
    assert r.status_code == 201, r.text
    topology.kakao.reset()
    await abnormal_episode(topology.b, "cam-replica-quiet-1")
    deadline = time.monotonic() + 30
    while True:
        alerts = (
            await topology.a.get("/api/v1/alerts", params={"source_id": "cam-replica-quiet-1"})
        ).json()["items"]
        if alerts:
            break
        assert time.monotonic() < deadline, "no alert recorded within 30 s"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # both dispatchers had time to (wrongly) send it
    assert [a["status"] for a in alerts] == ["silenced"]
    assert topology.kakao.memos == []


async def test_retention_runs_once_per_interval_across_replicas(topology):
    """Both replicas schedule retention; each interval's slot is queued by one of them and run
    once, on the worker, and the back-dated rows are gone."""
    engine = create_async_engine(topology.db_url)
    old, fresh = (
        [_old_event(40, "PROBS"), _old_event(40, "PROBS"), _old_event(5, "HEARTBEAT")],
        [_old_event(0, "PROBS")],
    )
    fresh_ids = {e.id for e in fresh}
    try:
        async with AsyncSession(engine) as session, session.begin():
            session.add_all(old + fresh)
        first = int(time.time() // RETENTION_INTERVAL) + 1  # the first slot after the insert
        last = first + 2  # three slots start after the insert
        deadline = time.monotonic() + 120
        while True:
            async with AsyncSession(engine) as session:
                jobs = (await session.scalars(select(Job).where(Job.name == "retention"))).all()
            slots = Counter(job.params["slot"] for job in jobs)
            done = all(job.state in (JobState.succeeded, JobState.failed) for job in jobs)
            if done and max(slots, default=0) >= last:
                break
            assert time.monotonic() < deadline, f"retention slots so far: {sorted(slots)}"
            await asyncio.sleep(0.5)
        async with AsyncSession(engine) as session:
            left = set(await session.scalars(select(Event.id).where(Event.source_id == SOURCE)))
    finally:
        await engine.dispose()
    # Slots before the insert fell while the processes were still starting (three of them
    # loading torch on two cores): a process more than a slot behind resumes one slot back by
    # design, so only the slots of the test's own window must all be there.
    assert max(slots.values()) == 1, f"a slot was run twice: {slots}"
    assert set(range(first, max(slots) + 1)) <= set(slots), f"a slot was skipped: {sorted(slots)}"
    assert all(job.state == JobState.succeeded and job.attempts == 1 for job in jobs)
    assert all(job.worker.endswith(topology.worker_name_suffix) for job in jobs)
    assert all(job.created_by == "scheduler" for job in jobs)
    deleted = Counter()
    for job in jobs:
        for item in job.result["report"]["items"]:
            deleted[item["kind"]] += item["count"]
    assert deleted["events"] == 2 and deleted["heartbeats"] == 1
    assert left == fresh_ids


SOURCE = "cam-replica-retention"


def _old_event(days: float, event_type: str) -> Event:
    at = datetime.now(UTC) - timedelta(days=days)
    return Event(
        id=uuid.uuid4(), source_id=SOURCE, event_type=event_type, occurred_at=at, received_at=at
    )


async def test_a_model_version_activated_through_one_replica_serves_on_both(topology):
    """Labels through A, retraining on the worker, activation through A: B serves the new
    version within seconds (MODEL_SYNC_SECS); a rollback through B reaches A the same way."""
    from app.ml.data import load_basic_motions

    motions = load_basic_motions()
    perm = [1, 2, 0, 4, 5, 3]
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(12):
        frames = (motions.train.x[i * 3][:, perm] + 0.5).round(5).tolist()
        at = start + timedelta(seconds=i * 10)
        await post(topology.a, event("START", "swap-cam", at=at, sequence=frames))
        done = await post(topology.a, event("END", "swap-cam", at=at, seconds=5))
        r = await topology.b.post(
            f"/api/v1/episodes/{done['episode_id']}/feedback",
            json={"label": str(motions.train.y[i * 3])},
        )
        assert r.status_code == 200, r.text
    probe = {"sequence": motions.test.x[0].tolist()}
    shipped = (await topology.b.post("/api/v1/behavior/analyze", json=probe)).json()[
        "model_version"
    ]
    r = await topology.a.post("/api/v1/models/train", json={"include_feedback": True, "epochs": 5})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        job = (await topology.b.get(r.json()["status_url"])).json()
        if job["state"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)
    assert job["state"] == "succeeded", job
    assert job["worker"].endswith(topology.worker_name_suffix)  # trained on the worker
    candidate = job["result"]["model_version"]

    async def serves(client: httpx.AsyncClient, version: str) -> float:
        began = time.monotonic()
        while True:
            answer = await client.post("/api/v1/behavior/analyze", json=probe)
            assert answer.status_code == 200, answer.text
            if answer.json()["model_version"] == version:
                return time.monotonic() - began
            assert time.monotonic() - began < 10, f"still {answer.json()['model_version']}"
            await asyncio.sleep(0.05)

    r = await topology.a.post(f"/api/v1/models/{candidate}/activate", json={"force": True})
    assert r.status_code == 200, r.text
    assert await serves(topology.a, candidate) < 0.5  # the activating process: at once
    await serves(topology.b, candidate)  # the other: within MODEL_SYNC_SECS
    listed = (await topology.b.get("/api/v1/models")).json()
    assert listed["active"] == candidate

    r = await topology.b.post(f"/api/v1/models/{shipped}/activate", json={"force": True})
    assert r.status_code == 200, r.text
    await serves(topology.a, shipped)
