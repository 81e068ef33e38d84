"""Background jobs through the HTTP API: bulk import, retries, failure alerts, queues, training.

Without Redis the jobs run in the app's own process (taskiq's in-memory broker); with
TEST_REDIS_URL they go through the Redis stream and the test app consumes its own queue.
Both paths run the same job functions and the same runner.
"""

from __future__ import annotations

import io
import uuid
import zipfile

import numpy as np
import pytest

from app.core.settings import ModelSettings
from app.services.jobs import JobName
from tests.conftest import wait_for_job

KO_TEXT = "낙상 경보가 울리면 2분 안에 거주자에게 전화합니다. 야간 근무자는 기록을 남깁니다."


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows `text` (ASCII), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


@pytest.fixture
def functions(app):
    """The app's job-function registry; functions swapped in a test are restored after."""
    registry = app.state.container.job_functions()
    saved = dict(registry._functions)
    yield registry
    registry._functions.clear()
    registry._functions.update(saved)


async def test_many_files_import_as_a_job_and_become_searchable_documents(client):
    files = [
        ("files", ("fall.md", "# Fall\n\n" + KO_TEXT, "text/markdown")),
        (
            "files",
            ("night.txt", "야간 근무 절차: 순찰은 한 시간마다.".encode("cp949"), "text/plain"),
        ),
        (
            "files",
            ("fire.pdf", minimal_pdf("Fire drill procedure for the east wing"), "application/pdf"),
        ),
    ]
    r = await client.post("/api/v1/knowledge/import", files=files)
    assert r.status_code == 202, r.text
    assert r.json()["name"] == JobName.IMPORT and r.json()["state"] in (
        "queued",
        "running",
        "succeeded",
    )

    job = await wait_for_job(client, r.json()["id"])

    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    assert job["result"]["files"] == 3 and job["result"]["documents"] == 3
    assert job["result"]["chunks"] >= 3 and job["result"]["skipped"] == []
    docs = {d["title"]: d for d in (await client.get("/api/v1/knowledge/docs")).json()["items"]}
    assert set(docs) == {"fall", "night", "fire"}
    assert "야간 근무 절차" in docs["night"]["content"]  # CP949 decoded
    assert "Fire drill procedure" in docs["fire"]["content"]  # text from the PDF
    assert all(d["indexed"] for d in docs.values())


async def test_zip_import_skips_files_it_cannot_use_and_says_why(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("guides/fall.md", KO_TEXT)
        archive.writestr("guides/empty.txt", "  \n")
        archive.writestr("guides/broken.pdf", b"%PDF-1.4 not really")
        archive.writestr("tool.exe", b"MZ")
        archive.writestr("__MACOSX/guides/._fall.md", b"junk")
    r = await client.post(
        "/api/v1/knowledge/import",
        files=[("files", ("kb.zip", buffer.getvalue(), "application/zip"))],
    )
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["files"] == 3 and job["result"]["documents"] == 1
    reasons = {s["name"]: s["reason"] for s in job["result"]["skipped"]}
    assert reasons["guides/empty.txt"].startswith("it has no text")
    assert reasons["guides/broken.pdf"].startswith("it is damaged or not a PDF file")


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([("files", ("kb.zip", b"not a zip", "application/zip"))], "import_bad_archive"),
        ([("files", ("tool.exe", b"MZ", "application/octet-stream"))], "import_no_files"),
    ],
)
async def test_an_unusable_upload_is_refused_before_a_job_is_queued(client, files, code):
    r = await client.post("/api/v1/knowledge/import", files=files)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_transient_failures_are_retried_with_backoff_then_the_job_succeeds(client, functions):
    calls: list[int] = []

    async def flaky(ctx):
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise ConnectionError("chroma connection reset")
        await ctx.progress(1, 1, "done")
        return {"ok": True}

    functions._functions[JobName.SUMMARIES] = flaky
    r = await client.post("/api/v1/admin/jobs/episode-summaries")
    assert r.status_code == 202, r.text

    job = await wait_for_job(client, r.json()["id"])

    assert job["state"] == "succeeded" and job["result"] == {"ok": True}
    assert calls == [1, 2, 3] and job["attempts"] == 3


async def test_a_job_that_fails_for_good_is_failed_once_and_raises_an_alert(
    client, app, functions, monkeypatch
):
    alerts: list[tuple[str, uuid.UUID, str]] = []

    async def job_failed(name, job_id, error):
        alerts.append((name, job_id, error))

    monkeypatch.setattr(app.state.container.alert_service(), "job_failed", job_failed)

    async def broken(ctx):
        raise ValueError("column 'x' is missing")

    functions._functions[JobName.SUMMARIES] = broken
    r = await client.post("/api/v1/admin/jobs/episode-summaries")
    job = await wait_for_job(client, r.json()["id"])

    assert job["state"] == "failed" and job["attempts"] == 1  # not transient: no retry
    assert job["error"] == "ValueError: column 'x' is missing"
    assert alerts == [(JobName.SUMMARIES, uuid.UUID(job["id"]), job["error"])]

    async def always_down(ctx):
        raise ConnectionError("redis down")

    functions._functions[JobName.SUMMARIES] = always_down
    r = await client.post("/api/v1/admin/jobs/episode-summaries")
    job = await wait_for_job(client, r.json()["id"])
    assert job["state"] == "failed" and job["attempts"] == job["max_attempts"] == 3
    assert len(alerts) == 2

    queues = (await client.get("/api/v1/admin/queues")).json()
    assert queues["failed"] == 2 and queues["depth"] == 0 and queues["running"] == 0
    # In Redis mode the worker count comes from heartbeat keys the per-test cleanup just
    # deleted (renewed within 5 s); tests/test_replicas.py checks it against a real worker.
    if queues["mode"] == "in_process":
        assert queues["workers"] == 1


async def test_admin_queues_shows_a_running_job_and_the_job_list_filters(client, functions):
    import asyncio

    release = asyncio.Event()

    async def slow(ctx):
        await ctx.progress(1, 4, "a quarter")
        await release.wait()
        return None

    functions._functions[JobName.SUMMARIES] = slow
    job_id = (await client.post("/api/v1/admin/jobs/episode-summaries")).json()["id"]
    for _ in range(200):
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["progress_message"] == "a quarter":
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "running" and job["progress"] == 0.25
    queues = (await client.get("/api/v1/admin/queues")).json()
    assert queues["running"] == 1
    assert queues["mode"] in ("redis", "in_process")
    listed = (await client.get("/api/v1/jobs", params={"state": "running"})).json()
    assert [j["id"] for j in listed["items"]] == [job_id]
    release.set()
    assert (await wait_for_job(client, job_id))["state"] == "succeeded"


async def test_retention_job_runs_the_retention_service_as_a_dry_run_by_default(client):
    r = await client.post("/api/v1/admin/jobs/retention", json={})
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["ran"] is True and result["dry_run"] is True
    assert result["report"]["dry_run"] is True and isinstance(result["report"]["items"], list)


async def test_training_on_an_uploaded_npz_writes_a_checkpoint(client, functions, tmp_path):
    functions.model_settings = ModelSettings(checkpoint_path=str(tmp_path / "served.pt"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 12, 6)).astype(np.float32)
    y = np.array(["standing", "walking", "fall"] * 8)
    x[y == "fall"] += 3.0
    buffer = io.BytesIO()
    np.savez(buffer, X=x, y=y)

    r = await client.post(
        "/api/v1/admin/jobs/train",
        files={"file": ("data.npz", buffer.getvalue(), "application/octet-stream")},
        data={"epochs": "2", "folds": "2"},
    )
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["id"])

    assert job["state"] == "succeeded", job
    path = job["result"]["checkpoint_path"]
    assert path.startswith(str(tmp_path / "trained")) and (tmp_path / "trained").exists()
    assert 0 <= job["result"]["test_accuracy"] <= 1


async def test_training_refuses_a_file_that_is_not_an_npz(client):
    r = await client.post(
        "/api/v1/admin/jobs/train",
        files={"file": ("data.npz", b"nope", "application/octet-stream")},
    )
    assert r.status_code == 422 and r.json()["code"] == "bad_npz"


async def test_unknown_job_is_a_404_in_the_error_shape(client):
    r = await client.get(f"/api/v1/jobs/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"
