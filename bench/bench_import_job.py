"""API responsiveness during a 5,000-chunk bulk import job (the embedded default: jobs in-process).

    uv run python bench/bench_import_job.py                 # 500 files x ~10 chunks
    uv run python bench/bench_import_job.py --files 50      # quick look

Starts `sentinel serve` on a free loopback port (temp SQLite, on-disk Chroma, no Redis, so
the import runs in the web process: the hardest case), then measures `/health/live` latency
with the same closed-loop probe twice in one run: idle (the anchor), and while the import
job runs, from the upload until the job has finished (the whole import, not a window of it).
Prints p50/p99 of both, their ratio, the job's duration, chunks per second, its progress
samples and the machine's load average before and after (the numbers mean little without it).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer

SENTENCES = [
    "낙상 경보가 울리면 담당자는 2분 안에 거주자에게 전화합니다.",
    "야간 근무자는 한 시간마다 복도를 순찰하고 기록을 남깁니다.",
    "화재 경보 시에는 동쪽 계단으로 대피하고 엘리베이터를 쓰지 않습니다.",
    "The operator confirms the alert in the console and notes the outcome.",
]


def archive(files: int, chunks_per_file: int, chunk_size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in range(files):
            paragraphs = []
            for c in range(chunks_per_file):
                text = f"문서 {f} 단락 {c}. "
                while len(text) < chunk_size - 120:
                    text += SENTENCES[(f + c + len(text)) % len(SENTENCES)] + " "
                paragraphs.append(text.strip())
            zf.writestr(f"guide-{f:04d}.md", "\n\n".join(paragraphs))
    return buffer.getvalue()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def probe(client: httpx.AsyncClient, stop: asyncio.Event, out: list[float], lanes: int):
    async def lane() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            r = await client.get("/health/live")
            out.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200
            await asyncio.sleep(0.01)

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def run(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    server = LiveServer({"LOG_LEVEL": "WARNING", "MAX_BODY_BYTES": "2000000"}).start(timeout=600)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            # Warm the embedding model so the import measures indexing, not the model load.
            await client.post("/api/v1/rag/ask", json={"question": "warm up"})
            idle: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(client, stop, idle, args.lanes))
            await asyncio.sleep(args.idle_secs)
            stop.set()
            await task

            data = archive(args.files, args.chunks_per_file, 800)
            r = await client.post(
                "/api/v1/knowledge/import", files=[("files", ("kb.zip", data, "application/zip"))]
            )
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            busy: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(client, stop, busy, args.lanes))
            started = time.perf_counter()
            samples = []
            while True:
                job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
                samples.append((round(time.perf_counter() - started), job["progress"]))
                if job["state"] in ("succeeded", "failed"):
                    break
                if args.window and time.perf_counter() - started > args.window:
                    break  # a partial look only; the job is interrupted with the server
                await asyncio.sleep(1.0)
            duration = time.perf_counter() - started
            stop.set()
            await task
    finally:
        server.stop()

    load_after = os.getloadavg()
    result = job["result"] or {}
    cpus = os.cpu_count()
    print(f"load average (1/5/15 min) before {load_before}, after {load_after}; {cpus} CPUs")
    if job["state"] != "succeeded":
        print(f"NOTE: the job did not finish ({job['state']}); the figures cover a part of it")
    print(
        f"import job {job['state']} after {duration:.1f} s: progress {job['progress']:.3f}; "
        f"{result.get('chunks')} of ~{args.files * args.chunks_per_file} chunks stored"
        f" ({(result.get('chunks') or 0) / duration:.1f} chunks/s)"
    )
    print("progress samples (s, fraction):", samples[:: max(1, len(samples) // 10)])
    for name, values in (("idle (anchor)", idle), ("during import", busy)):
        print(
            f"/health/live {name:>14}: n={len(values):5d}  p50={statistics.median(values):7.2f} ms"
            f"  p99={pct(values, 0.99):7.2f} ms"
        )
    print(f"p99 ratio during/idle: {pct(busy, 0.99) / pct(idle, 0.99):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--chunks-per-file", type=int, default=10)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--idle-secs", type=float, default=15.0)
    parser.add_argument(
        "--window",
        type=float,
        default=0,
        help="stop after this many seconds of the job (default 0: measure the whole import)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
