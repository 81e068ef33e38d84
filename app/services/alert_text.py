"""The texts people read in alerts: Korean and English templates, the time in
`ALERT_TIMEZONE`, per-channel lengths, and source ids made safe to print.

A source id comes from whoever can post events, so before it reaches any message it loses
control and format characters (newlines, bidi overrides, zero-width), markup characters
become `_`, and it is cut to `SOURCE_ID_MAX` characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from app.clients.notifiers.base import AlertMessage
from app.core.settings import AlertSettings
from app.models.alert import Alert, AlertKind, DeliveryStage

KAKAO_TEXT_LIMIT = 200
SUBJECT_LIMIT = 150
SOURCE_ID_MAX = 64
_SAFE_PUNCTUATION = frozenset("-_.#/")


def safe_source_id(value: str) -> str:
    """Letters, digits and `-_.#/` kept; other visible characters → `_`; controls dropped."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", value):
        category = unicodedata.category(ch)
        if category[0] in "LN" or ch in _SAFE_PUNCTUATION:
            out.append(ch)
        elif category[0] == "C":  # Cc/Cf/Co/Cn/Cs: newlines, bidi overrides, zero-width…
            continue
        elif not out or out[-1] != "_":
            out.append("_")
    text = "".join(out).strip("_") or "?"
    return text if len(text) <= SOURCE_ID_MAX else text[: SOURCE_ID_MAX - 1] + "…"


LABEL_MAX = 64
# Never printed: controls, format characters (zero-width, bidi overrides) and the
# line/paragraph separators (U+2028 broke e-mail headers).
_INVISIBLE = frozenset({"Zl", "Zp"})


def safe_label(value: str) -> str:
    """A label (a `probs` key, a channel or job name) made safe to print: controls, format
    characters and line separators dropped, other whitespace runs as one space, cut to
    `LABEL_MAX`. New labels are refused at ingest; this covers rows stored before that."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", value):
        category = unicodedata.category(ch)
        if category[0] == "C" or category in _INVISIBLE:
            continue
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            continue
        out.append(ch)
    text = "".join(out).strip() or "?"
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Parts:
    source: str
    time: str
    label: str
    score: str
    link: str


_SHORT = {
    "ko": {
        AlertKind.abnormal_episode: "[Sentinel] 이상 행동 감지: {source} · {label} (점수 {score}) · {time}",
        AlertKind.source_offline: "[Sentinel] 소스 연결 끊김: {source} · 마지막 신호 {time}",
        AlertKind.source_recovered: "[Sentinel] 소스 복구: {source} · {time}",
        AlertKind.delivery_failure: "[Sentinel] 알림 전송 실패: {source} · 채널 {label} · {time}",
        AlertKind.job_failed: "[Sentinel] 백그라운드 작업 실패: {label} · {time}",
    },
    "en": {
        AlertKind.abnormal_episode: (
            "[Sentinel] Abnormal behaviour on {source}: {label} (score {score}) at {time}"
        ),
        AlertKind.source_offline: "[Sentinel] Source offline: {source}, last seen {time}",
        AlertKind.source_recovered: "[Sentinel] Source back online: {source} at {time}",
        AlertKind.delivery_failure: (
            "[Sentinel] Alert delivery failed: {source}, channel {label} at {time}"
        ),
        AlertKind.job_failed: "[Sentinel] Background job failed for good: {label} at {time}",
    },
}

_FULL = {
    "ko": {
        AlertKind.abnormal_episode: (
            "이상 행동이 감지되었습니다.\n소스: {source}\n행동: {label}\n점수: {score}\n"
            "시각: {time}\n확인: {link}"
        ),
        AlertKind.source_offline: (
            "소스의 신호가 끊겼습니다.\n소스: {source}\n마지막 신호: {time}\n확인: {link}"
        ),
        AlertKind.source_recovered: (
            "소스가 다시 연결되었습니다.\n소스: {source}\n복구 시각: {time}\n확인: {link}"
        ),
        AlertKind.delivery_failure: (
            "알림을 전송하지 못했습니다.\n소스: {source}\n실패한 채널: {label}\n"
            "시각: {time}\n확인: {link}"
        ),
        AlertKind.job_failed: (
            "백그라운드 작업이 재시도 후에도 실패했습니다.\n작업: {label}\n시각: {time}\n"
            "확인: {link}"
        ),
    },
    "en": {
        AlertKind.abnormal_episode: (
            "Abnormal behaviour detected.\nSource: {source}\nBehaviour: {label}\n"
            "Score: {score}\nTime: {time}\nOpen: {link}"
        ),
        AlertKind.source_offline: (
            "A source stopped sending.\nSource: {source}\nLast seen: {time}\nOpen: {link}"
        ),
        AlertKind.source_recovered: (
            "A source is back online.\nSource: {source}\nBack at: {time}\nOpen: {link}"
        ),
        AlertKind.delivery_failure: (
            "An alert could not be delivered.\nSource: {source}\nFailed channel: {label}\n"
            "Time: {time}\nOpen: {link}"
        ),
        AlertKind.job_failed: (
            "A background job failed after its retries.\nJob: {label}\nTime: {time}\nOpen: {link}"
        ),
    },
}

_ESCALATION = {"ko": "[에스컬레이션·미확인] ", "en": "[Escalation, not acknowledged] "}


class AlertRenderer:
    """Builds the `AlertMessage` every channel sends, from an alert row and the settings."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)

    def _parts(self, alert: Alert) -> _Parts:
        at = (alert.occurred_at or alert.created_at).astimezone(self.zone)
        return _Parts(
            source=safe_source_id(alert.source_id),
            time=at.strftime("%Y-%m-%d %H:%M:%S %Z"),
            label=safe_label(alert.label) if alert.label else "unknown",
            score=f"{alert.score:.2f}" if alert.score is not None else "n/a",
            link=self.settings.link_url,
        )

    def short_lines(self, alert: Alert, stage: str = DeliveryStage.notify) -> list[str]:
        parts = self._parts(alert)
        kind = AlertKind(alert.kind)
        escalation = stage == DeliveryStage.escalation
        return [
            (_ESCALATION[lang] if escalation else "") + _SHORT[lang][kind].format(**vars(parts))
            for lang in self.settings.languages
        ]

    def summary(self, alert: Alert) -> str:
        """The stored text shown in `GET /api/v1/alerts` (every language, one line each)."""
        return "\n".join(self.short_lines(alert))

    def message(self, alert: Alert, stage: str = DeliveryStage.notify) -> AlertMessage:
        parts = self._parts(alert)
        kind = AlertKind(alert.kind)
        short = self.short_lines(alert, stage)
        escalation = stage == DeliveryStage.escalation
        full = "\n\n".join(
            (_ESCALATION[lang] if escalation else "") + _FULL[lang][kind].format(**vars(parts))
            for lang in self.settings.languages
        )
        return AlertMessage(
            alert_id=alert.id,
            kind=kind.value,
            stage=str(stage),
            source_id=parts.source,
            occurred_at=alert.occurred_at or alert.created_at,
            # Sanitised like the source id: webhook receivers print it too.
            label=safe_label(alert.label) if alert.label else None,
            score=alert.score,
            link=parts.link,
            subject=clip(short[0], SUBJECT_LIMIT),
            short_text=clip("\n".join(short), KAKAO_TEXT_LIMIT),
            text=full,
        )
