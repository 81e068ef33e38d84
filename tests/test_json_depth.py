"""The depth measure behind REQUEST_JSON_MAX_DEPTH agrees with the parser on every body."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from app.middleware.json_depth import json_depth

LIMIT = 8


def parsed_depth(value: Any) -> int:
    """How deep the parser recurses: one level per array or object."""
    if isinstance(value, list):
        return 1 + max((parsed_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((parsed_depth(v) for v in value.values()), default=0)
    return 0


def random_text(rng: random.Random) -> str:
    # Brackets, quotes and backslashes inside strings must not count.
    return "".join(rng.choice('ab[]{}"\\\n한') for _ in range(rng.randint(0, 6)))


def random_value(rng: random.Random, level: int = 0) -> Any:
    if level > 12 or rng.random() < 0.55:
        return rng.choice([1, 2.5, None, True, random_text(rng)])
    if rng.random() < 0.5:
        return [random_value(rng, level + 1) for _ in range(rng.randint(0, 4))]
    return {random_text(rng): random_value(rng, level + 1) for _ in range(rng.randint(0, 4))}


def nested(rng: random.Random, levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value, random_text(rng)] if rng.random() < 0.5 else {random_text(rng): value}
    return value


def test_depth_matches_the_parser_on_random_bodies():
    rng = random.Random(7)
    for i in range(3000):
        value = random_value(rng) if i % 2 else nested(rng, rng.randint(0, 30))
        body = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        depth = parsed_depth(value)
        measured = json_depth(body, LIMIT)
        # At most the limit: a cheap bound that never reads deeper than the parser goes.
        assert (measured > LIMIT) == (depth > LIMIT), body
        if body.count(b"[") + body.count(b"{") > LIMIT:
            assert measured == depth, body


@pytest.mark.parametrize(
    "body, depth",
    [
        (json.dumps({"sequence": [[0.5] * 6] * 100, "source_id": "cam"}).encode(), 3),
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b'["]]]]]]]]]]", ' + b"[" * 20 + b"]" * 20 + b"]", 21),
        (b'["\\\\", "\\"[[[[[[[[[[[[", ' + b"[" * 10 + b"]" * 10 + b"]", 11),
        (b"[" * 30, 30),  # a cut-off body: the parser gets this deep before it fails
    ],
)
def test_depth_of_shaped_bodies(body, depth):
    assert json_depth(body, LIMIT) == depth
