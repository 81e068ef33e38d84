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
            parts.append(f"(?P<{name}>.*?)")
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


M = Message
# Shared with its raise site (`ModelRegistry.check_feedback`), which fills it the same way.
NOT_ENOUGH_FEEDBACK = (
    "Retraining needs at least {needed} labelled episodes with stored frames; {found} found "
    "({labelled} labelled in all). Label episodes first (POST /api/v1/episodes/{{id}}/feedback)"
)
# Shared with its raise site (the promotion gate), which fills it from the same parameters.
GATE_MESSAGE = (
    "Model version '{version}' is worse than the active '{active}' (base test accuracy "
    "{base_new} vs {base_old}; held-out feedback accuracy {fb_new} vs {fb_old} on {fb_n} "
    'episodes). Send {{"force": true}} to activate it anyway'
)
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
        "json_too_deep",
        "The JSON body nests deeper than {limit} levels (REQUEST_JSON_MAX_DEPTH); "
        "send flatter JSON",
        "JSON 본문의 중첩이 {limit}단계보다 깊습니다(REQUEST_JSON_MAX_DEPTH). "
        "더 평평한 JSON을 보내세요",
    ),
    M(
        "validation_error",
        "{where}sequence frames have {n} features; at most {max} are accepted "
        "(EVENT_SEQUENCE_MAX_FEATURES)",
        "{where}sequence의 프레임마다 특징이 {n}개입니다. 최대 {max}개까지 받습니다"
        "(EVENT_SEQUENCE_MAX_FEATURES)",
    ),
    M(
        "validation_error",
        "probs label has an invisible or control character ({char}) at position {pos}; "
        "use visible text on one line",
        "probs 레이블의 {pos}번째 위치에 보이지 않는 문자나 제어 문자({char})가 있습니다. "
        "한 줄의 보이는 텍스트를 쓰세요",
    ),
    M(
        "document_busy",
        "Knowledge document {doc_id} is being changed by another request; retry in a few seconds",
        "지식 문서 {doc_id}를 다른 요청이 변경하고 있습니다. 잠시 후 다시 시도하세요",
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
    M(
        "turn_not_found",
        "No answer with id {turn_id} in conversation {conversation_id}",
        "대화 {conversation_id}에 ID가 {turn_id}인 답변이 없습니다",
    ),
    M(
        "unknown_document",
        "doc_id {doc_id} is not a knowledge document; name an existing document or leave "
        "doc_id out",
        "doc_id {doc_id}에 해당하는 지식 문서가 없습니다. 존재하는 문서의 ID를 넣거나 "
        "doc_id를 빼세요",
    ),
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
    # --- authorization and accounts -------------------------------------------------------
    M(
        "forbidden",
        "This endpoint needs {roles}; your role is {role}",
        "이 엔드포인트에는 {roles} 권한이 필요합니다. 현재 역할은 {role}입니다",
    ),
    M(
        "registration_closed",
        "Registration is closed on this server; ask an administrator for an account",
        "이 서버는 가입을 받지 않습니다. 관리자에게 계정을 요청하세요",
    ),
    M(
        "registration_invite_only",
        "Registration needs an invite on this server; ask an administrator for one",
        "이 서버는 초대가 있어야 가입할 수 있습니다. 관리자에게 초대를 요청하세요",
    ),
    M(
        "registration_invite_only",
        "This invite is for another e-mail address",
        "이 초대는 다른 이메일 주소용입니다",
    ),
    M("invalid_credentials", "This account is deactivated", "비활성화된 계정입니다"),
    # --- invites, lockout, password reset, Google linking (issue 29) ----------------------
    M(
        "invalid_value",
        "A value could not be stored: a text is longer than its field allows; shorten it",
        "값을 저장할 수 없습니다: 텍스트가 필드 길이 제한보다 깁니다. 줄여서 보내세요",
    ),
    M(
        "validation_error",
        "an admin-role invite creates administrators; send confirm_admin: true to issue one",
        "admin 역할 초대는 관리자를 만듭니다. 발급하려면 confirm_admin: true를 보내세요",
    ),
    M("invite_not_found", "No invite with id {id}", "ID가 {id}인 초대가 없습니다"),
    M(
        "invite_needs_admin",
        "Invites are bound to the admin who issues them; sign in as an admin to create one",
        "초대는 발급한 관리자에게 묶입니다. 초대를 만들려면 관리자로 로그인하세요",
    ),
    M(
        "validation_error",
        "contains an invisible or text-direction character (U+{char}); remove it",
        "보이지 않는 문자나 글자 방향 제어 문자(U+{char})가 들어 있습니다. 빼고 보내세요",
    ),
    M(
        "validation_error",
        "must not contain < or >; use plain text",
        "< 또는 >를 넣을 수 없습니다. 일반 텍스트로 쓰세요",
    ),
    M(
        "validation_error",
        "The Google account's {field} cannot be used here: {inner_msg}",
        "Google 계정의 {field} 값을 여기서 쓸 수 없습니다: {inner_msg}",
    ),
    M(
        "rate_limited",
        "Too many password reset requests from this client; retry in {wait} s",
        "이 클라이언트의 비밀번호 재설정 요청이 너무 많습니다. {wait}초 후 다시 시도하세요",
    ),
    M(
        "invalid_reset_token",
        "This password reset token is invalid, used or expired; ask for a new one",
        "비밀번호 재설정 토큰이 잘못되었거나 이미 쓰였거나 만료되었습니다. 새로 요청하세요",
    ),
    M(
        "google_account_mismatch",
        "This account is linked to another Google account; sign in with that one or with "
        "the password",
        "이 계정은 다른 Google 계정에 연결되어 있습니다. 그 Google 계정이나 비밀번호로 "
        "로그인하세요",
    ),
    M(
        "google_link_refused",
        "An account with this e-mail already exists and is not linked to Google; send its "
        "current password as `password` with the Google token, or ask an administrator to "
        "allow linking",
        "이 이메일로 된 계정이 이미 있고 Google에 연결되어 있지 않습니다. Google 토큰과 함께 "
        "그 계정의 현재 비밀번호를 `password`로 보내거나, 관리자에게 연결 허용을 요청하세요",
    ),
    M("invalid_credentials", "The current password is wrong", "현재 비밀번호가 틀렸습니다"),
    M("user_not_found", "No account with e-mail {email}", "이메일이 {email}인 계정이 없습니다"),
    M("user_not_found", "No such account", "그런 계정이 없습니다"),
    M("user_not_found", "No user with id {id}", "ID가 {id}인 사용자가 없습니다"),
    M(
        "rate_limited",
        "Too many sign-in attempts from this client ({limit}); retry in {retry_after} s",
        "이 클라이언트의 로그인 시도가 너무 많습니다({limit}). {retry_after}초 후 다시 시도하세요",
    ),
    M(
        "rate_limited",
        "Too many failed sign-ins for this account; retry in {wait} s or reset the password",
        "이 계정의 로그인 실패가 너무 많습니다. {wait}초 후 다시 시도하거나 비밀번호를 "
        "재설정하세요",
    ),
    M(
        "validation_error",
        "password must be at least 8 characters long",
        "비밀번호는 8자 이상이어야 합니다",
    ),
    M(
        "validation_error",
        "password must contain at least one letter and one digit",
        "비밀번호에 문자와 숫자가 하나 이상씩 있어야 합니다",
    ),
    M(
        "validation_error",
        "service is the ACCESS_TOKEN principal, not an account role",
        "service는 ACCESS_TOKEN 주체이며 계정 역할이 아닙니다. admin, operator, viewer 중에서 "
        "고르세요",
    ),
    # --- Google sign-in -------------------------------------------------------------------
    M(
        "google_not_configured",
        "Google sign-in is not enabled on this server (GOOGLE_CLIENT_ID is empty); "
        "sign in with e-mail and password",
        "이 서버에서는 Google 로그인이 켜져 있지 않습니다(GOOGLE_CLIENT_ID가 비어 있음). "
        "이메일과 비밀번호로 로그인하세요",
    ),
    M(
        "google_keys_unavailable",
        "Google's signing keys could not be fetched; try again in a minute",
        "Google 서명 키를 가져오지 못했습니다. 1분 후 다시 시도하세요",
    ),
    M(
        "invalid_google_token",
        "The Google ID token is signed with an unknown key or is malformed",
        "Google ID 토큰이 알 수 없는 키로 서명되었거나 형식이 잘못되었습니다",
    ),
    M(
        "invalid_google_token",
        "The Google ID token has expired; sign in with Google again",
        "Google ID 토큰이 만료되었습니다. Google로 다시 로그인하세요",
    ),
    M(
        "invalid_google_token",
        "The Google ID token was issued for another application (aud)",
        "Google ID 토큰이 다른 애플리케이션용으로 발급되었습니다(aud)",
    ),
    M(
        "invalid_google_token",
        "The ID token was not issued by Google (iss)",
        "ID 토큰을 Google이 발급하지 않았습니다(iss)",
    ),
    M(
        "invalid_google_token",
        "The Google ID token is not valid (signature or claims)",
        "Google ID 토큰이 유효하지 않습니다(서명 또는 클레임)",
    ),
    M(
        "google_email_unverified",
        "Google has not verified this account's e-mail address; verify it and retry",
        "Google이 이 계정의 이메일 주소를 확인하지 않았습니다. 확인한 뒤 다시 시도하세요",
    ),
    # --- alerts, alert routes, silences, live stream ---------------------------------------
    M("not_found", "No alert with id {id}", "ID가 {id}인 알림이 없습니다"),
    M("not_found", "No silence with id {id}", "ID가 {id}인 알림 중지가 없습니다"),
    M("not_found", "Silence {id} has already ended", "알림 중지 {id}은(는) 이미 끝났습니다"),
    M(
        "validation_error",
        "give either until (a one-off silence) or schedule (a recurring one), not both",
        "until(한 번만) 또는 schedule(반복) 중 하나만 보내세요. 둘 다 보낼 수는 없습니다",
    ),
    M(
        "validation_error",
        "give until (a one-off silence) or schedule (a recurring one)",
        "until(한 번만) 또는 schedule(반복) 중 하나를 보내세요",
    ),
    M(
        "validation_error",
        "times are HH:MM from 00:00 to 23:59, got {value}",
        "시각은 00:00부터 23:59까지의 HH:MM 형식이어야 합니다. 받은 값: {value}",
    ),
    M(
        "validation_error",
        "unknown weekday(s) {unknown}; use {known}",
        "알 수 없는 요일입니다: {unknown}. {known} 중에서 고르세요",
    ),
    M(
        "validation_error",
        "exception date(s) {dates} given more than once",
        "예외 날짜 {dates}이(가) 두 번 이상 있습니다",
    ),
    M(
        "validation_error",
        "schedule name(s) {names} given more than once",
        "일정 이름 {names}이(가) 두 번 이상 있습니다",
    ),
    M(
        "conflict",
        "schedule(s) still in use, so they cannot be removed: {users}. Change those first",
        "아직 사용 중인 일정은 지울 수 없습니다: {users}. 먼저 그것들을 바꾸세요",
    ),
    M("not_found", "No incident with id {id}", "ID가 {id}인 인시던트가 없습니다"),
    M(
        "forbidden",
        "operators may silence for at most 24 hours; ask an admin for a longer or "
        "recurring silence",
        "운영자는 최대 24시간까지만 알림을 중지할 수 있습니다. 더 길거나 반복되는 중지는 관리자에게 요청하세요",
    ),
    M(
        "validation_error",
        "unknown schedule(s) {names}; define them first with PUT /api/v1/alerts/schedules",
        "알 수 없는 일정입니다: {names}. 먼저 PUT /api/v1/alerts/schedules로 정의하세요",
    ),
    M(
        "validation_error",
        "escalation steps must be in rising after_secs order",
        "에스컬레이션 단계는 after_secs가 커지는 순서여야 합니다",
    ),
    M(
        "validation_error",
        "a repeating chain needs a last step with after_secs above 0",
        "반복하는 에스컬레이션은 마지막 단계의 after_secs가 0보다 커야 합니다",
    ),
    M(
        "validation_error",
        "until needs a time zone, e.g. 2026-11-25T18:00:00+09:00",
        "until에 시간대가 필요합니다(예: 2026-11-25T18:00:00+09:00)",
    ),
    M(
        "validation_error",
        "until is out of range; give a date within the next year",
        "until이 범위를 벗어났습니다. 1년 이내의 날짜를 보내세요",
    ),
    M(
        "validation_error",
        "until is in the past; a silence must end in the future",
        "until이 과거입니다. 알림 중지는 미래에 끝나야 합니다",
    ),
    M(
        "validation_error",
        "a silence may last at most 366 days; choose an earlier until",
        "알림 중지는 최대 366일까지입니다. 더 이른 until을 고르세요",
    ),
    M(
        "validation_error",
        "unknown channel(s) {unknown}; choose from {known} or *",
        "알 수 없는 채널입니다: {unknown}. {known} 또는 * 중에서 고르세요",
    ),
    M(
        "validation_error",
        "ALERT_ROUTES_FILE {path} is not a valid routes file: {error}",
        "ALERT_ROUTES_FILE {path}은(는) 올바른 알림 경로 파일이 아닙니다: {error}",
    ),
    M(
        "rate_limited",
        "The live stream is full ({max} listeners, STREAM_MAX_SUBSCRIBERS); retry in a minute",
        "실시간 스트림이 가득 찼습니다(청취자 {max}명, STREAM_MAX_SUBSCRIBERS). 1분 후 다시 "
        "시도하세요",
    ),
    M(
        "rate_limited",
        "You already have {max} live streams open (STREAM_MAX_PER_PRINCIPAL); close one and retry",
        "이미 실시간 스트림을 {max}개 열어 두었습니다(STREAM_MAX_PER_PRINCIPAL). 하나를 닫고 "
        "다시 시도하세요",
    ),
    M(
        "rate_limited",
        "The last {reserved} live-stream listeners are kept for admins (STREAM_ADMIN_RESERVED); "
        "retry in a minute",
        "남은 실시간 스트림 자리 {reserved}개는 관리자용입니다(STREAM_ADMIN_RESERVED). 1분 후 "
        "다시 시도하세요",
    ),
    M(
        "rate_limited",
        "Viewers already hold their share of the live stream ({max} listeners, "
        "STREAM_VIEWER_SHARE); retry in a minute",
        "뷰어에게 배정된 실시간 스트림 자리(청취자 {max}명, STREAM_VIEWER_SHARE)가 모두 "
        "찼습니다. 1분 후 다시 시도하세요",
    ),
    M(
        "kakao_error",
        "Kakao {what} failed: HTTP {status}, code {kakao_code}: {reason}",
        "카카오 {what} 실패: HTTP {status}, 코드 {kakao_code}: {reason}",
    ),
    M(
        "kakao_error",
        "Kakao memo send returned an unexpected body: {body}",
        "카카오 메모 전송이 예상하지 못한 응답을 돌려주었습니다: {body}",
    ),
    M(
        "kakao_error",
        "Kakao token refresh failed: HTTP {status}, {error}: {reason}",
        "카카오 토큰 갱신 실패: HTTP {status}, {error}: {reason}",
    ),
    M("kakao_error", "Kakao {what} timed out", "카카오 {what} 시간 초과"),
    M(
        "kakao_error",
        "Kakao {what} unreachable: {error}",
        "카카오 {what}에 연결할 수 없습니다: {error}",
    ),
    M(
        "kakao_error",
        "Kakao access token expired and no refresh is possible: set KAKAO_REFRESH_TOKEN and "
        "KAKAO_REST_API_KEY, or a new KAKAO_ACCESS_TOKEN",
        "카카오 액세스 토큰이 만료되었고 갱신할 수 없습니다: KAKAO_REFRESH_TOKEN과 "
        "KAKAO_REST_API_KEY를 설정하거나 새 KAKAO_ACCESS_TOKEN을 넣으세요",
    ),
    M(
        "service_unavailable",
        "Kakao is not configured: set KAKAO_ACCESS_TOKEN (and KAKAO_REFRESH_TOKEN with "
        "KAKAO_REST_API_KEY for automatic refresh)",
        "카카오가 설정되지 않았습니다: KAKAO_ACCESS_TOKEN을 설정하세요(자동 갱신에는 "
        "KAKAO_REFRESH_TOKEN과 KAKAO_REST_API_KEY도 필요합니다)",
    ),
    # --- jobs and imports -----------------------------------------------------------------
    M("job_not_found", "No job with id {id}", "ID가 {id}인 작업이 없습니다"),
    M(
        "unknown_job",
        "Unknown job '{name}'; known jobs: {known}",
        "알 수 없는 작업 '{name}'입니다. 알려진 작업: {known}",
    ),
    M(
        "job_queue_unavailable",
        "The job queue (Redis) is unreachable; the job was not queued. Retry shortly",
        "작업 큐(Redis)에 연결할 수 없어 작업을 넣지 못했습니다. 잠시 후 다시 시도하세요",
    ),
    M("bad_npz", "The uploaded training file is empty", "업로드한 학습 파일이 비어 있습니다"),
    M(
        "bad_npz",
        "The training file is not a readable .npz archive (numpy.savez)",
        "학습 파일이 읽을 수 있는 .npz 압축 파일(numpy.savez)이 아닙니다",
    ),
    M(
        "bad_npz",
        "The .npz lacks {missing}: it needs X [N,T,F] and y [N] (found: {found})",
        ".npz에 {missing}이(가) 없습니다: X [N,T,F]와 y [N]가 필요합니다(들어 있는 것: {found})",
    ),
    M(
        "import_no_files",
        "No importable files: expected {extensions} files",
        "가져올 파일이 없습니다: {extensions} 파일을 보내세요",
    ),
    M(
        "import_too_many_files",
        "{count} files in one import; the limit is {max} (JOB_IMPORT_MAX_FILES)",
        "한 번에 파일 {count}개를 가져오려 했습니다. 한도는 {max}개입니다(JOB_IMPORT_MAX_FILES)",
    ),
    M(
        "import_too_large",
        "The files unpack to {size} bytes; the limit is {max} (JOB_IMPORT_MAX_UNPACKED_BYTES); "
        "split the import",
        "파일을 풀면 {size}바이트입니다. 한도는 {max}바이트입니다"
        "(JOB_IMPORT_MAX_UNPACKED_BYTES). 나눠서 가져오세요",
    ),
    M(
        "import_bad_archive",
        "The upload is not a readable zip archive; send document files (.md .txt .pdf .docx "
        ".hwp .hwpx) or a .zip of them",
        "업로드한 파일이 읽을 수 있는 zip 압축 파일이 아닙니다. 문서 파일(.md .txt .pdf .docx "
        ".hwp .hwpx)이나 그 파일들을 담은 .zip을 보내세요",
    ),
    M(
        "unsupported_media_type",
        "Send the document as JSON (Content-Type: application/json) or its file as "
        "multipart/form-data with a `file` field",
        "문서를 JSON(Content-Type: application/json)으로 보내거나 파일을 `file` 필드가 있는 "
        "multipart/form-data로 보내세요",
    ),
    M(
        "document_unreadable",
        "The file {name} cannot be read: {inner_reason}",
        "파일 {name}을(를) 읽을 수 없습니다: {inner_reason}",
    ),
    M(
        "document_too_long",
        "The text of {name} is {length} characters; one document holds at most {max}: import it "
        "with POST /api/v1/knowledge/import, which splits it",
        "{name}의 텍스트가 {length}자입니다. 문서 하나에는 최대 {max}자까지 들어갑니다. 나눠서 "
        "저장하는 POST /api/v1/knowledge/import로 가져오세요",
    ),
    # Why a file cannot be read (app/services/document_files.py), inside the message above.
    M(
        "document_unreadable",
        "{ext} files are not read; send {allowed}",
        "{ext} 파일은 읽지 않습니다. 다음 파일을 보내세요: {allowed}",
    ),
    M(
        "document_unreadable",
        "it has no text (a scanned image needs OCR first)",
        "텍스트가 없습니다(스캔한 이미지라면 먼저 OCR을 거치세요)",
    ),
    M(
        "document_unreadable",
        "it is not UTF-8 or CP949 text",
        "UTF-8이나 CP949 텍스트가 아닙니다",
    ),
    M(
        "document_unreadable",
        "it is encrypted (password-protected); upload an unprotected copy",
        "암호가 걸려 있습니다. 암호를 푼 사본을 올리세요",
    ),
    M(
        "document_unreadable",
        "it is encrypted (password-protected) or an old .doc file",
        "암호가 걸려 있거나 예전 .doc 파일입니다",
    ),
    M(
        "document_unreadable",
        "it is encrypted or distribution-restricted; save an unprotected copy in Hancom",
        "암호가 걸려 있거나 배포용 문서입니다. 한컴오피스에서 보호를 푼 사본을 저장하세요",
    ),
    M(
        "document_unreadable",
        "it is not a supported HWP version (HWP 5.0, HWP 3 and HWPX are read)",
        "지원하지 않는 HWP 버전입니다(HWP 5.0, HWP 3, HWPX를 읽습니다)",
    ),
    M(
        "document_unreadable",
        "it is damaged or not a {kind} file ({error})",
        "손상되었거나 {kind} 파일이 아닙니다({error})",
    ),
    M("document_unreadable", "it is damaged ({error})", "손상된 파일입니다({error})"),
    M(
        "import_mixed_zip",
        "Send a zip archive on its own, not together with other files",
        "zip 압축 파일은 다른 파일과 섞지 말고 단독으로 보내세요",
    ),
    # --- knowledge, assistant, console ----------------------------------------------------
    M(
        "vector_store_unavailable",
        "The knowledge index was switched by a reindex; retry",
        "재색인으로 지식 색인이 바뀌었습니다. 다시 시도하세요",
    ),
    M(
        "llm_bad_request",
        "The model provider rejected the request ({reason}); shorten or rephrase the question",
        "모델 제공자가 요청을 거부했습니다({reason}). 질문을 줄이거나 바꿔 보세요",
    ),
    M("not_found", "No console asset named {name}", "이름이 {name}인 콘솔 파일이 없습니다"),
    M(
        "validation_error",
        "must not be blank; ask a question",
        "비어 있으면 안 됩니다. 질문을 쓰세요",
    ),
    M("validation_error", "must not be blank", "비어 있으면 안 됩니다. 내용을 쓰세요"),
    # --- behaviour model and event fields -------------------------------------------------
    M(
        "model_unavailable",
        "The behaviour model is not loaded ({reason}). Train one with `sentinel train-behavior` "
        "or point MODEL_CHECKPOINT_PATH at a checkpoint, then restart.",
        "행동 모델이 로드되지 않았습니다({reason}). `sentinel train-behavior`로 학습하거나 "
        "MODEL_CHECKPOINT_PATH를 체크포인트로 지정한 뒤 다시 시작하세요.",
    ),
    M(
        "service_unavailable",
        "The behaviour model failed on this batch; retry",
        "행동 모델이 이 배치를 처리하지 못했습니다. 다시 시도하세요",
    ),
    M(
        "validation_error",
        "sequences must be a non-empty list of sequences",
        "sequences는 비어 있지 않은 시퀀스 목록이어야 합니다",
    ),
    M(
        "validation_error",
        "send exactly one of 'sequence' (one list of frames) or 'sequences' (a list of sequences)",
        "'sequence'(프레임 목록 하나)와 'sequences'(시퀀스 목록) 중 정확히 하나만 보내세요",
    ),
    M(
        "validation_error",
        "'sequences' is empty; send at least one sequence",
        "'sequences'가 비어 있습니다. 시퀀스를 하나 이상 보내세요",
    ),
    M(
        "validation_error",
        "{where} must be a list of frames (each a list of {dim} numbers)",
        "{where}은(는) 프레임 목록이어야 합니다(각 프레임은 숫자 {dim}개의 목록)",
    ),
    M(
        "validation_error",
        "{where} frame {t} is not a list of {dim} numbers",
        "{where}의 프레임 {t}이(가) 숫자 {dim}개의 목록이 아닙니다",
    ),
    M(
        "validation_error",
        "{where} frame {t} feature {f} is {value}; features must be finite numbers "
        "(within ±3.4e38)",
        "{where}의 프레임 {t} 특징 {f}이(가) {value}입니다. 특징은 유한한 숫자(±3.4e38 이내)여야 "
        "합니다",
    ),
    M(
        "validation_error",
        "{where} frame {t} feature {f} is {type}; features must be numbers",
        "{where}의 프레임 {t} 특징 {f}이(가) {type}입니다. 특징은 숫자여야 합니다",
    ),
    M(
        "validation_error",
        "{where} features must be numbers",
        "{where}의 특징은 숫자여야 합니다",
    ),
    M(
        "validation_error",
        "source_id must be non-empty printable text",
        "source_id는 비어 있지 않은, 인쇄 가능한 텍스트여야 합니다",
    ),
    M(
        "validation_error",
        "probs has {count} labels; at most 64 are accepted",
        "probs에 레이블이 {count}개 있습니다. 최대 64개까지 받습니다",
    ),
    M(
        "validation_error",
        "probs labels must be 1 to 64 characters long",
        "probs 레이블은 1~64자여야 합니다",
    ),
    M(
        "validation_error",
        "probability of {label} is {p}; it must be between 0 and 1",
        "{label}의 확률이 {p}입니다. 0과 1 사이여야 합니다",
    ),
    M(
        "validation_error",
        "sequence is empty; send at least one frame or leave it out",
        "sequence가 비어 있습니다. 프레임을 하나 이상 보내거나 필드를 빼세요",
    ),
    M(
        "validation_error",
        "sequence frames are empty; each frame needs its feature values",
        "sequence의 프레임이 비어 있습니다. 프레임마다 특징 값이 있어야 합니다",
    ),
    M(
        "validation_error",
        "sequence frame {i} has {n} features; frame 0 has {width} "
        "(every frame must have the same number)",
        "sequence 프레임 {i}의 특징은 {n}개인데 프레임 0은 {width}개입니다(모든 프레임의 특징 "
        "수가 같아야 합니다)",
    ),
    # --- free-form text and metadata (app/schemas/safety.py) -------------------------------
    M(
        "validation_error",
        "contains a control character ({char}) at position {pos}; use printable text on one line",
        "{pos}번 위치에 제어 문자({char})가 있습니다. 한 줄의 인쇄 가능한 텍스트를 쓰세요",
    ),
    M(
        "validation_error",
        "contains a control character ({char}) at position {pos}; only line breaks and tabs "
        "are allowed",
        "{pos}번 위치에 제어 문자({char})가 있습니다. 줄바꿈과 탭만 쓸 수 있습니다",
    ),
    M(
        "validation_error",
        "contains a control character ({char}) at position {pos}; only text, line breaks, tabs "
        "and page breaks are allowed",
        "{pos}번 위치에 제어 문자({char})가 있습니다. 글자, 줄바꿈, 탭, 쪽 나눔만 쓸 수 있습니다",
    ),
    M(
        "validation_error",
        "contains a bidirectional control character ({char}) at position {pos}; it can change "
        "how the text reads, so remove it",
        "{pos}번 위치에 양방향 제어 문자({char})가 있습니다. 글이 읽히는 순서를 바꿀 수 있으니 "
        "지우세요",
    ),
    M(
        "validation_error",
        "contains an invisible zero-width character ({char}) at position {pos}; remove it",
        "{pos}번 위치에 보이지 않는 폭 없는 문자({char})가 있습니다. 지우세요",
    ),
    M(
        "validation_error",
        "is {size} bytes as JSON; at most {max} are accepted",
        "JSON으로 {size}바이트입니다. 최대 {max}바이트까지 받습니다",
    ),
    M(
        "validation_error",
        "has more than {max} values; send less metadata",
        "값이 {max}개를 넘습니다. metadata를 줄이세요",
    ),
    M(
        "validation_error",
        "has more than {max} keys in all; send less metadata",
        "키가 모두 {max}개를 넘습니다. metadata를 줄이세요",
    ),
    M(
        "validation_error",
        "nests deeper than {max} levels; flatten it",
        "중첩이 {max}단계보다 깊습니다. 구조를 평평하게 하세요",
    ),
    M(
        "validation_error",
        "keys must be text without NUL characters",
        "키는 NUL 문자가 없는 텍스트여야 합니다",
    ),
    M(
        "validation_error",
        "strings must not contain NUL characters",
        "문자열에 NUL 문자를 넣을 수 없습니다",
    ),
    M(
        "validation_error",
        "numbers must be finite (no NaN or Infinity)",
        "숫자는 유한해야 합니다(NaN, Infinity 불가)",
    ),
    # --- unavailable --------------------------------------------------------------------
    M(
        "database_unavailable",
        "The database is unavailable right now; retry in a few seconds",
        "지금 데이터베이스를 사용할 수 없습니다. 몇 초 후 다시 시도하세요",
    ),
    M(
        "embedder_mismatch",
        "The knowledge index {name} was built with the {built_by} embedder but "
        "EMBEDDING_BACKEND is {backend}; rebuild it with `sentinel knowledge check --repair` "
        "or POST /api/v1/knowledge/reindex",
        "지식 색인 {name}은(는) {built_by} 임베더로 만들어졌는데 EMBEDDING_BACKEND는 "
        "{backend}입니다. `sentinel knowledge check --repair` 또는 "
        "POST /api/v1/knowledge/reindex로 다시 만드세요",
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
    # --- learning from operators ----------------------------------------------------------
    M(
        "unknown_label",
        "Unknown label '{label}': the active model knows {labels}",
        "알 수 없는 라벨 '{label}'입니다. 현재 모델이 아는 라벨: {labels}",
    ),
    M("not_found", "No model version '{version}'", "모델 버전 '{version}'이(가) 없습니다"),
    M(
        "model_broken",
        "Model version '{version}' cannot be loaded",
        "모델 버전 '{version}'을(를) 불러올 수 없습니다",
    ),
    M(
        "model_incompatible",
        "Model version '{version}' expects {dim} features per frame; the active one {active_dim}",
        "모델 버전 '{version}'은(는) 프레임당 특징 {dim}개를 받지만 현재 모델은 {active_dim}개를 받습니다",
    ),
    M(
        "not_enough_feedback",
        NOT_ENOUGH_FEEDBACK,
        "재학습에는 프레임이 저장된 라벨 에피소드가 {needed}개 이상 필요한데 {found}개뿐입니다"
        "(라벨은 모두 {labelled}개). 먼저 에피소드에 라벨을 붙이세요"
        "(POST /api/v1/episodes/{{id}}/feedback)",
    ),
    M(
        "model_gate",
        GATE_MESSAGE,
        "모델 버전 '{version}'이(가) 현재 버전 '{active}'보다 나쁩니다 (기본 시험 정확도 "
        "{base_new} 대 {base_old}, 보류해 둔 피드백 {fb_n}건의 정확도 {fb_new} 대 {fb_old}). "
        '그래도 적용하려면 {{"force": true}}를 보내세요',
    ),
    M(
        "validation_error",
        "include_feedback must be true: retraining learns from labelled episodes",
        "include_feedback는 true여야 합니다: 재학습은 라벨이 붙은 에피소드에서 배웁니다",
    ),
    M(
        "validation_error",
        "No active model to retrain: {reason}",
        "재학습할 활성 모델이 없습니다: {reason}",
    ),
    M(
        "validation_error",
        "The base training data is missing: restore data/models/basic_motions.npz from the "
        "repository (or install the `aeon` package)",
        "기본 학습 데이터가 없습니다: 저장소에서 data/models/basic_motions.npz를 복원하세요 "
        "(또는 `aeon` 패키지를 설치하세요)",
    ),
    M(
        "service_unavailable",
        "The behaviour model changed while this request waited; retry",
        "요청이 기다리는 동안 행동 모델이 바뀌었습니다. 다시 시도하세요",
    ),
    # --- agents bound to their sources (issue 29, finding 5) ----------------------------------
    M(
        "source_not_allowed",
        "This agent credential may not post for source '{source}'; its source patterns are "
        "{patterns}",
        "이 에이전트 자격 증명으로는 소스 '{source}'의 이벤트를 보낼 수 없습니다. 허용된 소스 "
        "패턴: {patterns}",
    ),
    M(
        "conflict",
        "An agent named {name} already exists",
        "이름이 {name}인 에이전트가 이미 있습니다",
    ),
    M("not_found", "No agent with id {agent_id}", "ID가 {agent_id}인 에이전트가 없습니다"),
    M(
        "not_found",
        "Source {source_id} is not registered",
        "소스 {source_id}는 등록되어 있지 않습니다",
    ),
    # --- wrappers around another message (last: they match almost anything) ---------------
    M(
        "validation_error",
        "Invalid event payload: {where}: {inner_msg}",
        "이벤트 페이로드가 잘못되었습니다: {where}: {inner_msg}",
    ),
    M("validation_error", "sequence: {inner_msg}", "sequence 값 오류: {inner_msg}"),
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
    "kakao_error": "카카오 API 호출이 실패했습니다",
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


def _fill(entry: Message, values: dict[str, Any]) -> str:
    """The entry's Korean text with `values`; a few parameters are English phrases themselves:
    `roles` (from the authorization check), `inner_*` (another message, wrapped), and a rate
    limit's `group` and `limit`."""
    ko = dict(values)
    if "roles" in ko:
        ko["roles"] = _roles_ko(str(ko["roles"]))
    if entry.code == "rate_limited":
        if "group" in ko:
            ko["group"] = _GROUPS_KO.get(str(ko["group"]), ko["group"])
        if "limit" in ko:
            ko["limit"] = limit_ko(str(ko["limit"]))
    for name in [n for n in ko if n.startswith("inner_")]:
        ko[name] = _inner_ko(str(ko[name]))
    return entry.ko.format(**ko)


# Rate-limit groups (app/core/rate_limit.py GROUPS) as a Korean reader names them.
_GROUPS_KO = {
    "default": "일반",
    "events": "이벤트 수집",
    "analyze": "행동 분석",
    "ask": "질문",
    "auth": "로그인",
}
_UNITS_KO = {"second": "초", "minute": "분", "hour": "시간", "day": "일", "month": "개월"}
_LIMIT = re.compile(r"(\d+) per (\d+) (second|minute|hour|day|month)s?")


def limit_ko(limit: str) -> str:
    """`limits`' text in Korean: '30 per 1 minute' -> '1분에 30회' (each of a ';' list)."""

    def one(match: re.Match[str]) -> str:
        count, span, unit = match.groups()
        return f"{span}{_UNITS_KO[unit]}에 {count}회"

    return _LIMIT.sub(one, limit)


# Python's json module's complaints (the `error` of `json_invalid`) in Korean.
_JSON_ERRORS_KO = {
    "Expecting value": "값이 와야 합니다",
    "Unterminated string starting at": "문자열이 닫히지 않았습니다",
    "Expecting property name enclosed in double quotes": "큰따옴표로 감싼 이름이 와야 합니다",
    "Expecting ',' delimiter": "쉼표(,)가 와야 합니다",
    "Expecting ':' delimiter": "콜론(:)이 와야 합니다",
    "Extra data": "JSON 뒤에 남는 내용이 있습니다",
    "Invalid control character at": "문자열 안에 제어 문자가 있습니다",
    "Invalid \\escape": "잘못된 이스케이프(\\)가 있습니다",
}
# Field-level `value_error`s from libraries, by the start of their English text.
_VALUE_ERRORS_KO = {
    "value is not a valid email address": "올바른 이메일 주소가 아닙니다(예: name@example.com)",
    "body is not valid JSON": "본문이 올바른 JSON이 아닙니다. 올바른 JSON을 보내세요",
}


def _roles_ko(roles: str) -> str:
    """'operator or above or the service token' -> 'operator 이상 또는 서비스 토큰'."""
    return (
        roles.replace("the service token", "서비스 토큰")
        .replace(" or above", " 이상")
        .replace(" or ", " 또는 ")
    )


def _inner_ko(english: str) -> str:
    """A wrapped message: a catalogue sentence, or one of Pydantic's own (by its template)."""
    english = english.removeprefix("Value error, ")
    for entry in _ANY_CODE:
        match = entry.pattern().match(english)
        if match:
            return _fill(entry, match.groupdict())
    for error_type, pattern in _pydantic_patterns():
        match = pattern.match(english)
        if match:
            try:
                return VALIDATION_KO[error_type].format(**match.groupdict())
            except (KeyError, IndexError, ValueError):
                break
    return english


@cache
def _pydantic_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Pydantic's English message templates for the error types translated above."""
    from pydantic_core._pydantic_core import list_all_errors

    known = [e for e in list_all_errors() if e["type"] in VALIDATION_KO]
    # Most literal text first: "Input should be {expected}" must not shadow the specific ones.
    known.sort(key=lambda e: -len(re.sub(r"\{\w+\}", "", e["message_template_python"])))
    return [(e["type"], _template_regex(e["message_template_python"])) for e in known]


def localize_validation(
    error_type: str, english: str, ctx: dict[str, Any] | None, language: Language
) -> str:
    """One field-level validation message in `language`."""
    if language is Language.EN:
        return english
    ctx = dict(ctx or {})
    if error_type in ("enum", "literal_error") and "expected" in ctx:
        ctx["expected"] = str(ctx["expected"]).replace(" or ", " 또는 ")
    if error_type == "json_invalid" and "error" in ctx:
        ctx["error"] = _JSON_ERRORS_KO.get(str(ctx["error"]), "구문 오류")
        if "position" in ctx:
            ctx["error"] = f"{ctx['position']}번째 문자 근처: {ctx['error']}"
    template = VALIDATION_KO.get(error_type)
    if template is not None:
        try:
            return template.format(**ctx)
        except (KeyError, IndexError, ValueError):
            pass
    for prefix, korean in _VALUE_ERRORS_KO.items():
        if english.startswith(prefix):
            return korean
    # value_error and friends: a catalogue sentence if one matches, else Korean + the English.
    for entry in _ANY_CODE:
        match = entry.pattern().match(english)
        if match:
            return _fill(entry, match.groupdict())
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
            return _fill(entry, {k: params[k] for k in entry.params})
    for entry in [*entries, *_ANY_CODE]:
        match = entry.pattern().match(english)
        if match:
            return _fill(entry, match.groupdict())
    generic = GENERIC_KO.get(code)
    if generic is None:
        return english
    return f"{generic} ({english})" if english else generic
