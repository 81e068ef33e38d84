"""The fast JSON encoder keeps the standard library's output for everything it encodes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.encoding import dumps


@pytest.mark.parametrize(
    "value",
    [
        {"normal": 0.92, "fall": 0.05, "낙상": 1e-7},
        {"fps": 15, "note": "카메라 3번\n줄바꿈", "nested": {"a": [1, 2.5, None, True]}},
        {"huge": 2**70, "neg": -(2**65)},
        {"np": np.float64(0.25)},
        [],
    ],
)
def test_fast_encoder_reads_back_as_the_standard_library_writes(value):
    text = dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert "\\u" not in text  # Korean stays readable in logs and the JSONL file


def test_fast_encoder_refuses_what_the_standard_library_refuses():
    with pytest.raises(TypeError):
        dumps({"x": object()})
