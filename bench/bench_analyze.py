"""Benchmark POST /api/v1/behavior/analyze against its ceilings, in one command:

    uv run python bench/bench_analyze.py [--seconds 4] [--concurrency 1,16,64]

It starts the real server (uvicorn, one worker, SQLite, shipped checkpoint) twice — with the
default micro-batching (BATCH_MAX_SIZE=64) and with BATCH_MAX_SIZE=1 (one forward pass per
request) — and drives each with a keep-alive HTTP/1.1 client at each concurrency, sending
BasicMotions test-split sequences. The ceiling is a pure-torch batched forward of the same
inputs in this process, with the same TORCH_NUM_THREADS (no HTTP, no JSON, no queue).
It also samples GET /health during the heaviest batched run to show the event loop stays free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ml.checkpoint import load_checkpoint  # noqa: E402
from app.ml.data import load_basic_motions  # noqa: E402
from bench.hotpath import wait_idle  # noqa: E402

PATH = "/api/v1/behavior/analyze"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Connection:
    """A minimal keep-alive HTTP/1.1 client (cheap, so the client is not the bottleneck)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.reader and self.writer
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def build_request(method: str, path: str, body: bytes | None, port: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: keep-alive"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def drive(port: int, requests: list[bytes], concurrency: int, seconds: float, health: bool):
    """Closed loop: `concurrency` workers each send a request as soon as the last one answered."""
    latencies: list[float] = []
    health_ms: list[float] = []
    errors = 0
    stop_at = 0.0
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        conn = Connection("127.0.0.1", port)
        await conn.open()
        try:
            while time.perf_counter() < stop_at:
                raw = requests[counter % len(requests)]
                counter += 1
                t0 = time.perf_counter()
                status, _ = await conn.request(raw)
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
        finally:
            conn.close()

    async def prober() -> None:
        conn = Connection("127.0.0.1", port)
        await conn.open()
        raw = build_request("GET", "/health", None, port)
        try:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                await conn.request(raw)
                health_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.02)
        finally:
            conn.close()

    # warm-up, then the measured window
    stop_at = time.perf_counter() + min(1.0, seconds / 4)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.clear()
    errors = 0
    start = time.perf_counter()
    stop_at = start + seconds
    tasks = [worker() for _ in range(concurrency)] + ([prober()] if health else [])
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "rps": len(latencies) / elapsed,
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
        "errors": errors,
        "health_p50": pct(health_ms, 50),
        "health_p99": pct(health_ms, 99),
        "health_n": len(health_ms),
    }


def start_server(port: int, env_extra: dict[str, str], workdir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "LOG_ACCESS": "false",
        "ENVIRONMENT": "development",
        "RATE_LIMIT_ENABLED": "false",
        **env_extra,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app_factory",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                # The embedder and the tokenizer load in threads after start-up; measuring
                # meanwhile put their GIL time into the first run's latencies.
                wait_idle(proc.pid)
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("server exited during start-up") from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


def torch_ceiling(sequences: list[np.ndarray], batch: int, seconds: float, threads: int) -> float:
    """Sequences per second of the bare batched forward pass (same padding code as serving)."""
    import torch

    from app.ml.model import pad_sequences

    torch.set_num_threads(threads)
    ckpt = load_checkpoint(ROOT / "data" / "models" / "behavior_lstm.pt")
    clf = ckpt.build_classifier()
    batches = [
        [sequences[(i * batch + j) % len(sequences)] for j in range(batch)] for i in range(8)
    ]
    for b in batches[:2]:
        clf.predict_proba_padded(*pad_sequences(b, clf.feature_dim))
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        b = batches[done % len(batches)]
        clf.predict_proba_padded(*pad_sequences(b, clf.feature_dim))
        done += 1
    return done * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--torch-threads", type=int, default=1, help="TORCH_NUM_THREADS")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    test = load_basic_motions().test
    sequences = [test.x[i, : test.lengths[i]] for i in range(len(test))]
    bodies = [json.dumps({"sequence": np.round(s, 4).tolist()}).encode() for s in sequences]
    print(
        f"inputs: {len(sequences)} BasicMotions test sequences (100 frames x 6 features, "
        f"~{statistics.mean(map(len, bodies)) / 1024:.1f} KiB JSON each); "
        f"TORCH_NUM_THREADS={args.torch_threads}; {os.cpu_count()} CPU cores; "
        f"{args.seconds:.0f} s per run; load average before start {os.getloadavg()[0]:.2f}"
    )

    rows: dict[tuple[str, int], dict] = {}
    configs = [("batched (BATCH_MAX_SIZE=64)", "64"), ("unbatched (BATCH_MAX_SIZE=1)", "1")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in configs:
            port = free_port()
            proc = start_server(
                port,
                {"BATCH_MAX_SIZE": size, "TORCH_NUM_THREADS": str(args.torch_threads)},
                Path(tmp),
            )
            try:
                requests = [build_request("POST", PATH, b, port) for b in bodies]
                for c in levels:
                    probe = size == "64" and c == max(levels)
                    rows[(name, c)] = asyncio.run(drive(port, requests, c, args.seconds, probe))
                    r = rows[(name, c)]
                    print(f"  {name:30s} c={c:<3d} {r['rps']:8.0f} req/s", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)

    ceilings = {
        c: torch_ceiling(sequences, c, args.seconds / 2, args.torch_threads) for c in levels
    }

    print()
    print(f"{'server':30s} {'conc':>5s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s}")
    for (name, c), r in rows.items():
        print(f"{name:30s} {c:5d} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:6d}")
    for c in levels:
        print(f"{'pure torch, batch of ' + str(c):30s} {c:5d} {ceilings[c]:9.0f} {'':>8s} {'':>8s}")
    print()
    print(f"{'conc':>5s} {'batched/unbatched':>18s} {'batched/torch ceiling':>22s}")
    batched, unbatched = configs[0][0], configs[1][0]
    for c in levels:
        b, u = rows[(batched, c)]["rps"], rows[(unbatched, c)]["rps"]
        print(f"{c:5d} {b / u:17.2f}x {b / ceilings[c]:21.0%}")
    probe = rows[(batched, max(levels))]
    print(
        f"\nGET /health during the c={max(levels)} batched run: "
        f"p50 {probe['health_p50']:.2f} ms, p99 {probe['health_p99']:.2f} ms "
        f"({probe['health_n']} probes)"
    )
    print(f"load average after the run: {os.getloadavg()[0]:.2f} (other processes skew figures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
