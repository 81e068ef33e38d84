"""The one-click acknowledgement page behind each alert message's link (helper-owned
module): no session, the signed link is the credential.

`GET /ack/{token}` only shows the incident and one button; `POST /ack/{token}` (the button's
form) acknowledges. A GET must never acknowledge: link previewers (Slack's unfurler, Kakao's
scraper, mail scanners that open every link to check it) fetch GET links on their own, and
would acknowledge every alert before a person saw it.

Every answer is a small self-contained HTML page in Korean and English (the order follows
`Accept-Language`), never echoing the token: 200 (ready / acknowledged / acknowledged by
someone else before), 400 (damaged link), 403 (not signed by Sentinel), 404 (no such
incident), 409 (link already used), 410 (expired). `Cache-Control: no-store`,
`Referrer-Policy: no-referrer`, and a CSP that allows the page's own inline style (by its
hash) and a form post to this origin, nothing else. The production bearer gate lets `/ack/`
through (`PUBLIC_PREFIXES` in app/middleware/auth.py); the app has no Origin/CSRF guard, and
a forged cross-site POST can only spend a link its sender already holds.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.api.authz import GuardedRoute, container_of
from app.core.i18n import Language, language_of
from app.schemas.incidents import IncidentOut
from app.services.ack_links import AckLinkService, AckResult, AckState
from app.services.alert_text import kind_name, safe_source_id

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;padding:2rem 1rem;background:#f5f6f8;"
    "color:#1d2330}main{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;"
    "padding:1.5rem;box-shadow:0 1px 3px #0002}h1{font-size:1.3rem;margin:0 0 1rem}"
    "p{line-height:1.5}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}"
    "dt{color:#5a6270}dd{margin:0}button{font-size:1.1rem;padding:.7rem 1.4rem;border:0;"
    "border-radius:6px;background:#1f6feb;color:#fff;cursor:pointer;width:100%}"
    ".en{color:#5a6270}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
ACK_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ACK_CSP,
    "X-Robots-Tag": "noindex, nofollow",
}

# state → (HTTP status, Korean title, English title, Korean text, English text)
_PAGES: dict[AckState, tuple[int, str, str, str, str]] = {
    AckState.ready: (
        200,
        "알림 확인",
        "Acknowledge this alert",
        "아래 버튼을 누르면 이 사건을 확인(응답)한 것으로 기록되고 남은 에스컬레이션이 멈춥니다.",
        "Press the button to acknowledge this incident; its remaining escalation steps stop.",
    ),
    AckState.acknowledged: (
        200,
        "확인되었습니다",
        "Acknowledged",
        "이 사건을 확인(응답)한 것으로 기록했습니다.",
        "The incident is recorded as acknowledged.",
    ),
    AckState.already_acked: (
        200,
        "이미 확인된 사건입니다",
        "Already acknowledged",
        "다른 사람이 먼저 확인했습니다. 아무것도 바뀌지 않았습니다.",
        "Someone acknowledged this incident before; nothing was changed.",
    ),
    AckState.used: (
        409,
        "이미 사용된 링크입니다",
        "This link was already used",
        "확인 링크는 한 번만 쓸 수 있습니다. 아무것도 바뀌지 않았습니다.",
        "An acknowledgement link works once; nothing was changed.",
    ),
    AckState.not_found: (
        404,
        "사건을 찾을 수 없습니다",
        "Incident not found",
        "이 링크의 사건이 더 이상 없습니다(보관 기간이 지나 삭제되었을 수 있습니다).",
        "The incident of this link no longer exists (it may have been removed by retention).",
    ),
    AckState.malformed: (
        400,
        "이 링크는 유효하지 않습니다",
        "This link is not valid",
        "링크가 잘렸거나 손상되었습니다. 메시지의 링크를 그대로 열거나 콘솔에서 확인하세요.",
        "The link is cut off or damaged: open it exactly as in the message, or use the console.",
    ),
    AckState.forged: (
        403,
        "이 링크는 유효하지 않습니다",
        "This link is not valid",
        "Sentinel이 만든 링크가 아닙니다. 아무것도 바뀌지 않았습니다. 콘솔에서 확인하세요.",
        "Sentinel did not make this link; nothing was changed. Use the console to acknowledge.",
    ),
    AckState.expired: (
        410,
        "만료된 링크입니다",
        "This link has expired",
        "확인 링크의 유효 기간이 지났습니다. 아무것도 바뀌지 않았습니다. 콘솔에서 확인하세요.",
        "The acknowledgement link has expired; nothing was changed. Use the console instead.",
    ),
}


def _service(request: Request) -> AckLinkService:
    container = container_of(request)
    return AckLinkService(container.database(), container.ack_links())


def _pair(ko: str, en: str, english_first: bool) -> str:
    first, second = (en, ko) if english_first else (ko, en)
    return f"{escape(first)}<br><span class=en>{escape(second)}</span>"


def _facts(incident: IncidentOut, zone: ZoneInfo, english_first: bool) -> str:
    def when(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    kind = _pair(kind_name(incident.kind, "ko"), kind_name(incident.kind, "en"), english_first)
    rows = [
        (_pair("장소", "Source", english_first), escape(safe_source_id(incident.source_id))),
        (_pair("종류", "Kind", english_first), kind),
        (_pair("시작", "Opened", english_first), escape(when(incident.opened_at))),
        (_pair("알림 수", "Alerts", english_first), str(incident.alert_count)),
    ]
    if incident.acked_at is not None:
        who = escape(incident.acked_by or "?")
        rows.append(
            (_pair("확인", "Acknowledged", english_first), f"{who}<br>{when(incident.acked_at)}")
        )
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _page(request: Request, result: AckResult) -> HTMLResponse:
    status, title_ko, title_en, text_ko, text_en = _PAGES[result.state]
    english_first = language_of(request.headers, Language.KO) == Language.EN
    body = f"<h1>{_pair(title_ko, title_en, english_first)}</h1>"
    body += f"<p>{_pair(text_ko, text_en, english_first)}</p>"
    if result.incident is not None:
        zone = ZoneInfo(container_of(request).settings().alerts.timezone)
        body += _facts(result.incident, zone, english_first)
    if result.state == AckState.ready:
        # No action: the form posts back to this page's own address (the token stays out of
        # the body).
        body += (
            '<form method="post"><button type="submit">'
            f"{escape('Acknowledge / 확인(응답)' if english_first else '확인(응답) / Acknowledge')}"
            "</button></form>"
        )
    html = (
        f'<!doctype html><html lang="{"en" if english_first else "ko"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow"><title>Sentinel</title>'
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


@router.get("/ack/{token}")
async def ack_page(request: Request, token: str) -> HTMLResponse:
    """The incident and one button; changes nothing."""
    return _page(request, await _service(request).look(token))


@router.post("/ack/{token}")
async def ack_submit(request: Request, token: str) -> HTMLResponse:
    """Spend the link and acknowledge its incident."""
    return _page(request, await _service(request).acknowledge(token))
