"""The first question after `/health/ready`, against the median of the next ones:

    uv run python bench/first_answer.py [--docs tests/data/rag/seeds] [--runs 3] [--questions 10]

Each run starts a fresh `sentinel serve` process (SQLite and Chroma in a temporary folder that
already holds the documents, written by a first server that is then stopped), polls
`/health/ready` until it says ready (the time to ready is printed), then asks one Korean
question and `--questions` more (different wording each, so no answer cache is hit), and prints
the first answer's time, the median of the others and their ratio. With no API keys the answers
are local (extractive), so the figure is the assistant's own path: embedder, Kiwi, BM25,
Chroma, the relevance floor and the focused answer.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "제미나이 할당량이 초과되면 몇 초 동안 쉬나요?",
    "실패한 테스트만 다시 돌리려면 pytest 옵션이 뭔가요?",
    "카카오 알림 버튼에 표시할 텍스트는 어떻게 설정하나요?",
    "구글 로그인은 어떤 엔드포인트로 구현하나요?",
    "PR을 병합하려면 몇 명의 리뷰 승인이 필요한가요?",
    "LLM 호출이 실패하면 지수 백오프로 몇 번까지 재시도하나요?",
    "이벤트 타입에는 어떤 종류가 있나요?",
    "사용하는 asyncpg 버전은 몇인가요?",
    "장시간 작업 중에 락의 TTL을 연장할 수 있나요?",
    "Supabase JWT는 어떤 비밀값으로 검증하나요?",
    "행동 분석 API 응답에는 어떤 점수가 포함되나요?",
    "전체 개발 일정은 버퍼를 포함해 몇 주인가요?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
        "CHROMA_PATH": str(workdir / "chroma"),
        "REDIS_URL": "",
        "EVENT_LOG_PATH": str(workdir / "events.jsonl"),
        "LOG_LEVEL": "WARNING",
        "GEMINI_API_KEY": "",
        "OPENAI_API_KEY": "",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait(url: str, path: str, timeout: float = 180.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{path} not ready after {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=60)


def load_documents(workdir: Path, docs: Path) -> None:
    port = free_port()
    process = serve(workdir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait(url, "/health/ready")
        for path in sorted(docs.iterdir()):
            if path.suffix in (".md", ".txt"):
                body = {"title": path.stem, "content": path.read_text(encoding="utf-8")}
                r = httpx.post(url + "/api/v1/knowledge/docs", json=body, timeout=120)
                r.raise_for_status()
    finally:
        stop(process)


def one_run(workdir: Path, questions: int) -> tuple[float, float, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = serve(workdir, port)
    try:
        wait(url, "/health/ready")
        ready = time.perf_counter() - started
        timings = []
        with httpx.Client(base_url=url, timeout=120) as client:
            for question in QUESTIONS[: questions + 1]:
                t0 = time.perf_counter()
                r = client.post("/api/v1/rag/ask", json={"question": question})
                r.raise_for_status()
                timings.append(time.perf_counter() - t0)
        return ready, timings[0], statistics.median(timings[1:])
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default=str(ROOT / "tests/data/rag/seeds"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentinel-first-") as tmp:
        workdir = Path(tmp)
        load_documents(workdir, Path(args.docs))
        print(f"{'run':>3} {'to ready s':>10} {'first ms':>9} {'median ms':>9} {'ratio':>6}")
        ratios = []
        for run in range(1, args.runs + 1):
            ready, first, median = one_run(workdir, min(args.questions, len(QUESTIONS) - 1))
            ratios.append(first / median)
            print(
                f"{run:>3} {ready:>10.1f} {first * 1000:>9.1f} {median * 1000:>9.1f} "
                f"{first / median:>6.2f}"
            )
        print(f"median ratio first/median: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
