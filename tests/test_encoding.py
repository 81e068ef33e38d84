"""The fast JSON encoder keeps the standard library's output for everything it encodes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.encoding import dumps, loads


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
    expected, got = json.loads(text), loads(text)
    assert json.dumps(got) == json.dumps(expected)


def test_json_size_counts_utf8_bytes_of_compact_json():
    from app.core.encoding import json_size

    value = {"note": "낙상", "n": [1, 2.5, None], "big": 2**70}
    expected = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert json_size(value) == expected
    assert json_size({"x": "한"}) == len('{"x":"한"}'.encode())  # 3 bytes, not a 6-byte \u escape


@pytest.mark.parametrize(
    "body",
    [
        b'{"sequence": [[0.1234, -1.5, 3e-7, 1E+2, 0, -0.0]], "source_id": "cam-01"}',
        '{"note": "카메라 3번 \\u00e9 \\n", "probs": {"낙상": 0.9}}'.encode(),
        b"[18446744073709551616, -9223372036854775809, 12345678901234567890123]",
        b"[0.12345678901234567890123]",  # 19+ digits: read by the standard library
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'["\\ud800 lone surrogate"]',
        b'{"a": 1, "a": 2}',
        "[1, 2]".encode("utf-16"),
        b"  [ ]  ",
        b"\xef\xbb\xbf[1]",  # a UTF-8 byte order mark
    ],
)
def test_request_bodies_read_as_the_standard_library_reads_them(body):
    expected = json.loads(body)
    got = loads(body)
    # The JSON text they write back (NaN != NaN), and the types: 2**64 stays an int.
    assert json.dumps(got) == json.dumps(expected)
    if isinstance(expected, list):
        assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("body", [b"", b"{", b'{"a": 1,}', b"[1, 2", b"\xff"])
def test_bad_request_bodies_fail_with_the_standard_librarys_error(body):
    with pytest.raises(ValueError) as expected:
        json.loads(body)
    with pytest.raises(ValueError) as got:
        loads(body)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)
