"""One catalogue of the messages people read in error bodies, in English and Korean.

Entries are keyed by the error's language-free `code` and carry `{parameter}` placeholders.
English is what the raise site wrote (so documented English messages never change); Korean
is rendered from the catalogue: with the parameters the raise site put in `context`, or, for
sites that only wrote an English sentence, with the parameters read back from that sentence
by the entry's English template. The language is chosen per request from `Accept-Language`
(`DEFAULT_LANGUAGE` otherwise), only when an error is rendered.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any


class Language(StrEnum):
    """Languages Sentinel answers in."""

    EN = "en"
    KO = "ko"


@dataclass(frozen=True)
class Message:
    """One catalogue entry: the same message in every language, with `{name}` parameters."""

    code: str
    en: str
    ko: str

    @property
    def params(self) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.en) if name}

    def pattern(self) -> re.Pattern[str]:
        return _template_regex(self.en)


@cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


M = Message
CATALOGUE: tuple[Message, ...] = (
    # --- authentication (the production gate's three messages first) -------------------
    M("unauthorized", "Authorization header required", "Authorization 헤더가 필요합니다"),
    M(
        "unauthorized",
        "Invalid authorization header format",
        "Authorization 헤더 형식이 잘못되었습니다: 'Bearer <토큰>' 형식으로 보내세요",
    ),
    M("unauthorized", "Invalid access token", "유효하지 않은 액세스 토큰입니다"),
    M("invalid_token", "Invalid access token", "유효하지 않은 액세스 토큰입니다"),
    M("unauthorized", "Not authenticated", "인증이 필요합니다: Bearer 토큰을 보내세요"),
    M(
        "invalid_credentials",
        "Incorrect email or password",
        "이메일 또는 비밀번호가 올바르지 않습니다",
    ),
    M(
        "email_taken",
        "An account with email {email} already exists",
        "이메일 {email} 계정이 이미 있습니다",
    ),
    M(
        "forbidden",
        "This endpoint needs a user token; the service token is not a user",
        "이 엔드포인트는 사용자 토큰이 필요합니다. 서비스 토큰은 사용자가 아닙니다",
    ),
    M(
        "forbidden",
        "This endpoint is for administrators; log in as an admin user",
        "관리자 전용 엔드포인트입니다. 관리자 계정으로 로그인하세요",
    ),
    M("forbidden", "This endpoint is for administrators", "관리자 전용 엔드포인트입니다"),
    # --- limits -----------------------------------------------------------------------
    M(
        "payload_too_large",
        "Request body too large: the limit is {limit} bytes (MAX_BODY_BYTES); "
        "send less data per request (e.g. split a batch)",
        "요청 본문이 너무 큽니다: 한도는 {limit}바이트입니다(MAX_BODY_BYTES). "
        "요청당 데이터를 줄이세요(예: 배치를 나누기)",
    ),
    M(
        "rate_limited",
        "Rate limit exceeded for {group} requests ({limit}); retry in {retry_after} s",
        "{group} 요청 한도({limit})를 넘었습니다. {retry_after}초 후 다시 시도하세요",
    ),
    # --- not found / conflict ---------------------------------------------------------
    M(
        "document_not_found",
        "No knowledge document with id {id}",
        "ID가 {id}인 지식 문서가 없습니다",
    ),
    M("not_found", "No episode with id {id}", "ID가 {id}인 에피소드가 없습니다"),
    M(
        "conversation_not_found",
        "No conversation with id {id}; omit conversation_id to start a new one",
        "ID가 {id}인 대화가 없습니다. 새 대화를 시작하려면 conversation_id를 빼세요",
    ),
    M("conversation_not_found", "No conversation with id {id}", "ID가 {id}인 대화가 없습니다"),
    M("not_found", "Not Found", "요청한 경로가 없습니다. /docs에서 경로를 확인하세요"),
    M("method_not_allowed", "Method Not Allowed", "이 경로는 이 HTTP 메서드를 지원하지 않습니다"),
    M(
        "reindex_running",
        "A reindex is already running; wait for it to finish and retry",
        "재색인이 이미 진행 중입니다. 끝난 뒤 다시 시도하세요",
    ),
    M(
        "conflict",
        "The request conflicts with existing data",
        "요청이 기존 데이터와 충돌합니다",
    ),
    # --- input ------------------------------------------------------------------------
    M(
        "invalid_value",
        "A value could not be stored: text must not contain NUL (\\u0000) characters, "
        "numbers must fit in 64 bits, dates must lie between years 1 and 9999",
        "값을 저장할 수 없습니다: 텍스트에 NUL(\\u0000) 문자를 넣을 수 없고, 숫자는 64비트 범위, "
        "날짜는 1년~9999년 사이여야 합니다",
    ),
    M(
        "unsupported_media_type",
        "Send the body as JSON with Content-Type: application/json",
        "본문을 JSON으로 보내고 Content-Type: application/json 헤더를 붙이세요",
    ),
    M(
        "invalid_cursor",
        "cursor is not valid; pass the next_cursor value from the previous page unchanged",
        "cursor가 올바르지 않습니다. 이전 페이지의 next_cursor 값을 그대로 보내세요",
    ),
    M(
        "offset_not_supported",
        "offset paging was replaced by cursors: leave offset out and pass the next_cursor "
        "value of the previous page as cursor",
        "offset 페이지 나누기는 cursor로 바뀌었습니다. offset을 빼고 이전 페이지의 next_cursor "
        "값을 cursor로 보내세요",
    ),
    M(
        "validation_error",
        "since must be earlier than until",
        "since는 until보다 이전이어야 합니다",
    ),
    M(
        "validation_error",
        "{name} needs a time zone, e.g. 2026-11-25T10:00:00Z",
        "{name}에 시간대가 필요합니다(예: 2026-11-25T10:00:00Z)",
    ),
    M(
        "validation_error",
        "batch has {count} events; at most {max} are accepted (EVENT_BATCH_MAX); "
        "split it into smaller batches",
        "배치에 이벤트가 {count}개 있습니다. 최대 {max}개까지 받습니다(EVENT_BATCH_MAX). 더 작게 나누세요",
    ),
    M(
        "validation_error",
        "{where}metadata is {size} bytes as JSON; at most {max} are accepted "
        "(EVENT_METADATA_MAX_BYTES)",
        "{where}metadata가 JSON으로 {size}바이트입니다. 최대 {max}바이트까지 받습니다"
        "(EVENT_METADATA_MAX_BYTES)",
    ),
    M(
        "validation_error",
        "{where}sequence has {count} frames; at most {max} are accepted (MAX_SEQUENCE_LENGTH)",
        "{where}sequence의 프레임이 {count}개입니다. 최대 {max}개까지 받습니다(MAX_SEQUENCE_LENGTH)",
    ),
    M(
        "validation_error",
        "{where} frame {t} has {n} features; the model expects {dim} numbers per frame",
        "{where}의 프레임 {t}에 특징이 {n}개 있습니다. 모델은 프레임당 숫자 {dim}개를 기대합니다",
    ),
    M(
        "validation_error",
        "{where} is empty; send at least one frame of {dim} numbers",
        "{where}가 비어 있습니다. 숫자 {dim}개짜리 프레임을 하나 이상 보내세요",
    ),
    M(
        "validation_error",
        "{where} has {count} frames; the maximum is {max} (MAX_SEQUENCE_LENGTH): "
        "send the most recent frames",
        "{where}의 프레임이 {count}개입니다. 최대 {max}개입니다(MAX_SEQUENCE_LENGTH). "
        "가장 최근 프레임만 보내세요",
    ),
    M(
        "validation_error",
        "Invalid event payload: {field}: epoch seconds must be a finite number between "
        "-62135596800 and 253402214400 (0001-01-02 .. 9999-12-30 UTC), got {value}",
        "이벤트 페이로드가 잘못되었습니다: {field}: epoch 초는 -62135596800 ~ 253402214400 "
        "(UTC 0001-01-02 ~ 9999-12-30) 사이의 유한한 숫자여야 합니다. 받은 값: {value}",
    ),
    M(
        "validation_error",
        'Invalid event payload: {field}: expected a JSON object such as {{"fps": 15}}, got {type}',
        '이벤트 페이로드가 잘못되었습니다: {field}: {{"fps": 15}} 같은 JSON 객체여야 합니다. '
        "받은 형식: {type}",
    ),
    # --- unavailable --------------------------------------------------------------------
    M(
        "database_unavailable",
        "The database is unavailable right now; retry in a few seconds",
        "지금 데이터베이스를 사용할 수 없습니다. 몇 초 후 다시 시도하세요",
    ),
    M(
        "vector_store_unavailable",
        "The vector store is unavailable right now; check CHROMA_PATH/CHROMA_HOST and retry",
        "지금 벡터 저장소를 사용할 수 없습니다. CHROMA_PATH/CHROMA_HOST를 확인하고 다시 시도하세요",
    ),
    M(
        "internal_error",
        "Internal server error",
        "서버 내부 오류입니다. 요청 ID와 함께 관리자에게 알려 주세요",
    ),
)

# When no entry matches: a Korean sentence per code (status family), the English specifics after it.
GENERIC_KO: dict[str, str] = {
    "bad_request": "요청을 해석할 수 없습니다",
    "unauthorized": "인증이 필요합니다",
    "forbidden": "이 작업을 할 권한이 없습니다",
    "not_found": "찾을 수 없습니다",
    "method_not_allowed": "지원하지 않는 HTTP 메서드입니다",
    "conflict": "기존 데이터와 충돌합니다",
    "payload_too_large": "요청 본문이 너무 큽니다",
    "unsupported_media_type": "지원하지 않는 Content-Type입니다",
    "validation_error": "입력이 올바르지 않습니다",
    "rate_limited": "요청 한도를 넘었습니다",
    "service_unavailable": "지금 서비스를 사용할 수 없습니다. 잠시 후 다시 시도하세요",
    "llm_bad_request": "모델 제공자가 요청을 거부했습니다. 질문을 줄이거나 바꿔 보세요",
}

_BY_CODE: dict[str, list[Message]] = {}
for _m in CATALOGUE:
    _BY_CODE.setdefault(_m.code, []).append(_m)
_ANY_CODE = list(CATALOGUE)


# Pydantic's error types (and Sentinel's own PydanticCustomError types) in Korean; `{x}` comes
# from the error's ctx. Each says what would be right, not only what was wrong.
VALIDATION_KO: dict[str, str] = {
    "missing": "필수 항목입니다. 값을 보내세요",
    "string_too_short": "{min_length}자 이상이어야 합니다",
    "string_too_long": "{max_length}자 이하여야 합니다",
    "too_short": "항목이 {min_length}개 이상이어야 합니다",
    "too_long": "항목이 {max_length}개 이하여야 합니다",
    "greater_than_equal": "{ge} 이상이어야 합니다",
    "greater_than": "{gt}보다 커야 합니다",
    "less_than_equal": "{le} 이하여야 합니다",
    "less_than": "{lt}보다 작아야 합니다",
    "int_parsing": "정수여야 합니다",
    "int_type": "정수여야 합니다",
    "int_from_float": "소수점 없는 정수여야 합니다",
    "float_parsing": "숫자여야 합니다",
    "float_type": "숫자여야 합니다",
    "finite_number": "유한한 숫자여야 합니다(NaN, Infinity 불가)",
    "bool_parsing": "true 또는 false여야 합니다",
    "bool_type": "true 또는 false여야 합니다",
    "string_type": "문자열이어야 합니다",
    "dict_type": 'JSON 객체여야 합니다(예: {{"key": "value"}})',
    "model_type": "JSON 객체여야 합니다",
    "model_attributes_type": "JSON 객체여야 합니다. 본문을 application/json으로 보내세요",
    "list_type": "JSON 배열이어야 합니다",
    "enum": "다음 중 하나여야 합니다: {expected}",
    "literal_error": "다음 중 하나여야 합니다: {expected}",
    "uuid_parsing": "UUID여야 합니다(예: 5b0c8a0e-3f64-4a55-9a6e-1c1f2a7f0b11)",
    "uuid_type": "UUID여야 합니다(예: 5b0c8a0e-3f64-4a55-9a6e-1c1f2a7f0b11)",
    "datetime_parsing": "ISO 8601 날짜-시간이어야 합니다(예: 2026-11-25T10:00:00Z)",
    "datetime_from_date_parsing": "ISO 8601 날짜-시간이어야 합니다(예: 2026-11-25T10:00:00Z)",
    "datetime_type": "ISO 8601 날짜-시간이어야 합니다(예: 2026-11-25T10:00:00Z)",
    "timezone_aware": "시간대가 있는 날짜-시간이어야 합니다(예: ...+09:00 또는 ...Z)",
    "json_invalid": "JSON을 해석할 수 없습니다({error}). 올바른 JSON을 보내세요",
    "extra_forbidden": "알 수 없는 필드입니다. 빼고 보내세요",
    "string_pattern_mismatch": "형식이 맞지 않습니다(패턴: {pattern})",
    "datetime_out_of_range": "날짜-시간이 범위를 벗어났습니다: {range} 사이의 시각을 보내세요",
    "iso_datetime_expected": "시간대가 있는 ISO 8601 날짜-시간이어야 합니다(예: 2026-11-25T10:00:00Z)",
    "not_null": "null일 수 없습니다. 값을 보내거나 필드를 빼세요",
}


def localize_validation(
    error_type: str, english: str, ctx: dict[str, Any] | None, language: Language
) -> str:
    """One field-level validation message in `language`."""
    if language is Language.EN:
        return english
    template = VALIDATION_KO.get(error_type)
    if template is not None:
        try:
            return template.format(**(ctx or {}))
        except (KeyError, IndexError, ValueError):
            pass
    # value_error and friends: a catalogue sentence if one matches, else Korean + the English.
    for entry in _ANY_CODE:
        match = entry.pattern().match(english)
        if match:
            return entry.ko.format(**match.groupdict())
    return f"값이 올바르지 않습니다({english})"


def negotiate(accept_language: str | None, default: Language) -> Language:
    """The best supported language in an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return default
    best: tuple[float, Language] | None = None
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        lang = default if primary == "*" else _LANGS.get(primary)
        if lang is None or q <= 0:
            continue
        score = q - position * 1e-6  # ties: the earlier tag wins
        if best is None or score > best[0]:
            best = (score, lang)
    return best[1] if best else default


_LANGS = {lang.value: lang for lang in Language}


def language_of(headers: Any, default: Language) -> Language:
    """Language for a request from its ASGI header list or a Starlette Headers mapping."""
    if isinstance(headers, list | tuple):
        value = next((v.decode("latin-1") for k, v in headers if k == b"accept-language"), None)
    else:
        value = headers.get("accept-language")
    return negotiate(value, default)


def localize(
    code: str, english: str, language: Language, params: dict[str, Any] | None = None
) -> str:
    """The message for `code` in `language`; English is the raise site's own sentence."""
    if language is Language.EN:
        return english
    entries = _BY_CODE.get(code, [])
    for entry in entries:
        if params and entry.params and entry.params <= params.keys():
            return entry.ko.format(**{k: params[k] for k in entry.params})
    for entry in [*entries, *_ANY_CODE]:
        match = entry.pattern().match(english)
        if match:
            return entry.ko.format(**match.groupdict())
    generic = GENERIC_KO.get(code)
    if generic is None:
        return english
    return f"{generic} ({english})" if english else generic
