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


@pytest.mark.parametrize(
    "text",
    [
        '{"normal": 0.92, "낙상": 1e-7, "nested": {"a": [1, 2.5, null, true]}}',
        '{"nan": NaN, "inf": Infinity}',  # the standard library wrote these; they must still read
        '{"huge": 1180591620717411303424}',
        '{"below_int64": -9223372036854775809, "nineteen": -9999999999999999999}',
        "[]",
    ],
)
def test_fast_decoder_reads_what_the_standard_library_reads(text):
    from app.core.encoding import loads

    expected, got = json.loads(text), loads(text)
    assert json.dumps(got) == json.dumps(expected)


def test_json_size_counts_utf8_bytes_of_compact_json():
    from app.core.encoding import json_size

    value = {"note": "낙상", "n": [1, 2.5, None], "big": 2**70}
    expected = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert json_size(value) == expected
    assert json_size({"x": "한"}) == len('{"x":"한"}'.encode())  # 3 bytes, not a 6-byte \u escape
