"""The texts people read in alerts: Korean and English templates, the time in
`ALERT_TIMEZONE`, per-channel lengths, and source ids made safe to print.

A source id comes from whoever can post events, so before it reaches any message it loses
control and format characters (newlines, bidi overrides, zero-width), markup characters
become `_`, and it is cut to `SOURCE_ID_MAX` characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from app.clients.notifiers.base import AlertMessage
from app.core.settings import AlertSettings
from app.models.alert import Alert, AlertKind, DeliveryStage, Incident, parse_stage

KAKAO_TEXT_LIMIT = 200
SUBJECT_LIMIT = 150
SOURCE_ID_MAX = 64
_SAFE_PUNCTUATION = frozenset("-_.#/")
_GLOB = frozenset("*?")
# Kinds whose source is a silence's glob pattern.
_PATTERN_KINDS = frozenset({"maintenance_reminder", "maintenance_summary"})


def safe_source_id(value: str, glob: bool = False) -> str:
    """Letters, digits and `-_.#/` kept (with `glob`, also `*?` of a silence's pattern);
    other visible characters → `_`; controls dropped."""
    out: list[str] = []
    keep = _SAFE_PUNCTUATION | _GLOB if glob else _SAFE_PUNCTUATION
    for ch in unicodedata.normalize("NFKC", value):
        category = unicodedata.category(ch)
        if category[0] in "LN" or ch in keep:
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
    detail: str = ""


KIND_NAMES = {
    "ko": {
        AlertKind.abnormal_episode: "이상 행동",
        AlertKind.source_offline: "연결 끊김",
        AlertKind.source_recovered: "복구",
        AlertKind.delivery_failure: "전송 실패",
        AlertKind.job_failed: "작업 실패",
        AlertKind.source_flapping: "상태 반복 전환",
        AlertKind.maintenance_reminder: "점검 종료 예고",
        AlertKind.maintenance_summary: "점검 요약",
        AlertKind.digest: "교대 요약",
    },
    "en": {
        AlertKind.abnormal_episode: "abnormal behaviour",
        AlertKind.source_offline: "offline",
        AlertKind.source_recovered: "recovered",
        AlertKind.delivery_failure: "delivery failure",
        AlertKind.job_failed: "job failure",
        AlertKind.source_flapping: "flapping",
        AlertKind.maintenance_reminder: "maintenance reminder",
        AlertKind.maintenance_summary: "maintenance summary",
        AlertKind.digest: "shift digest",
    },
}


def kind_name(kind: str, lang: str) -> str:
    try:
        return KIND_NAMES[lang][AlertKind(kind)]
    except (KeyError, ValueError):
        return safe_label(kind)


def _counts_text(counts: dict[str, Any], lang: str) -> str:
    unit = "건" if lang == "ko" else ""
    parts = [
        f"{kind_name(k, lang)} {int(n)}{unit}"
        for k, n in sorted(counts.items())
        if isinstance(n, int | float) and n
    ]
    if parts:
        return ", ".join(parts)
    return "없음" if lang == "ko" else "none"


def _digest_text(data: dict[str, Any], lang: str) -> str:
    """The digest's body from its `data` (see `app/services/alert_digest.py`)."""
    top = ", ".join(
        f"{safe_source_id(str(s))} ({int(n)})"
        for s, n in (data.get("top_sources") or [])[:5]
        if isinstance(n, int | float)
    ) or ("없음" if lang == "ko" else "none")
    offline = ", ".join(safe_source_id(str(s)) for s in (data.get("offline") or [])[:10])
    offline = offline or ("없음" if lang == "ko" else "none")
    n = {k: int(data.get(k) or 0) for k in ("opened", "resolved", "unacknowledged")}
    if lang == "ko":
        return (
            f"새 인시던트 {n['opened']}건, 해결 {n['resolved']}건, 미확인 {n['unacknowledged']}건"
            f"\n연결 끊긴 소스: {offline}\n많이 발생한 소스: {top}"
        )
    return (
        f"{n['opened']} incident(s) opened, {n['resolved']} resolved, "
        f"{n['unacknowledged']} unacknowledged\nOffline sources: {offline}\nTop sources: {top}"
    )


def _detail(alert: Alert, lang: str) -> str:
    data = alert.data if isinstance(alert.data, dict) else {}
    if alert.kind == AlertKind.maintenance_summary:
        counts = data.get("counts")
        return _counts_text(counts if isinstance(counts, dict) else {}, lang)
    if alert.kind == AlertKind.digest:
        return _digest_text(data, lang)
    return ""


_SHORT = {
    "ko": {
        AlertKind.abnormal_episode: "[Sentinel] 이상 행동 감지: {source} · {label} (점수 {score}) · {time}",
        AlertKind.source_offline: "[Sentinel] 소스 연결 끊김: {source} · 마지막 신호 {time}",
        AlertKind.source_recovered: "[Sentinel] 소스 복구: {source} · {time}",
        AlertKind.delivery_failure: "[Sentinel] 알림 전송 실패: {source} · 채널 {label} · {time}",
        AlertKind.job_failed: "[Sentinel] 백그라운드 작업 실패: {label} · {time}",
        AlertKind.source_flapping: (
            "[Sentinel] 상태 반복 전환: {source} · 정상/이상 {label}회 전환, 안정될 때까지 알림 보류 · {time}"
        ),
        AlertKind.maintenance_reminder: "[Sentinel] 점검 곧 종료: {source} · 종료 {time}",
        AlertKind.maintenance_summary: "[Sentinel] 점검 종료: {source} · 보류된 알림 {detail}",
        AlertKind.digest: "[Sentinel] 교대 요약 {time}",
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
        AlertKind.source_flapping: (
            "[Sentinel] Flapping: {source} switched between normal and abnormal {label} times; "
            "alerts held until stable, at {time}"
        ),
        AlertKind.maintenance_reminder: "[Sentinel] Maintenance ends soon: {source} at {time}",
        AlertKind.maintenance_summary: (
            "[Sentinel] Maintenance over: {source}, held back {detail}"
        ),
        AlertKind.digest: "[Sentinel] Shift digest {time}",
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
        AlertKind.source_flapping: (
            "소스가 정상과 이상 사이를 반복해서 오가고 있습니다.\n소스: {source}\n"
            "전환 횟수: {label}\n안정될 때까지 이 소스의 이상 행동 알림을 보류합니다.\n"
            "시각: {time}\n확인: {link}"
        ),
        AlertKind.maintenance_reminder: (
            "점검(무음) 기간이 곧 끝납니다.\n대상: {source}\n종료: {time}\n확인: {link}"
        ),
        AlertKind.maintenance_summary: (
            "점검(무음) 기간이 끝났습니다.\n대상: {source}\n보류된 알림: {detail}\n"
            "종료: {time}\n확인: {link}"
        ),
        AlertKind.digest: "교대 요약 ({time})\n{detail}\n확인: {link}",
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
        AlertKind.source_flapping: (
            "A source keeps switching between normal and abnormal.\nSource: {source}\n"
            "Switches: {label}\nIts behaviour alerts are held until it is stable.\n"
            "Time: {time}\nOpen: {link}"
        ),
        AlertKind.maintenance_reminder: (
            "A maintenance silence ends soon.\nSources: {source}\nEnds: {time}\nOpen: {link}"
        ),
        AlertKind.maintenance_summary: (
            "A maintenance silence is over.\nSources: {source}\nHeld back: {detail}\n"
            "Ended: {time}\nOpen: {link}"
        ),
        AlertKind.digest: "Shift digest ({time})\n{detail}\nOpen: {link}",
    },
}

_ESCALATION = {"ko": "[에스컬레이션·미확인] ", "en": "[Escalation, not acknowledged] "}
_ESCALATION_STEP = {
    "ko": "[에스컬레이션 {k}/{n}단계·미확인] ",
    "en": "[Escalation step {k} of {n}, not acknowledged] ",
}
_UPDATE_SHORT = {
    "ko": "[Sentinel] 계속 발생 중 ({count}건): {source} · {label} · 최고 점수 {score} · 최근 {last}",
    "en": "[Sentinel] Still happening ({count} episodes): {source}, {label}, top score {score}, "
    "latest {last}",
}
_RESOLVE_SHORT = {
    "ko": "[Sentinel] 해결됨: {source} · {label} · 총 {count}건 · {first} ~ {last}",
    "en": "[Sentinel] Resolved: {source}, {label}, {count} in all, {first} to {last}",
}
_ACK_LINE = {"ko": "바로 확인(응답): {url}", "en": "Acknowledge: {url}"}


class AlertRenderer:
    """Builds the `AlertMessage` every channel sends, from an alert row (plus its incident
    for updates, resolves and escalation steps) and the settings."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)

    def when(self, at: Any) -> str:
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    def _parts(self, alert: Alert, lang: str = "ko") -> _Parts:
        return _Parts(
            source=safe_source_id(alert.source_id, glob=alert.kind in _PATTERN_KINDS),
            time=self.when(alert.occurred_at or alert.created_at),
            label=safe_label(alert.label) if alert.label else "unknown",
            score=f"{alert.score:.2f}" if alert.score is not None else "n/a",
            link=self.settings.link_url,
            detail=_detail(alert, lang),
        )

    def _incident_vars(self, alert: Alert, incident: Incident) -> dict[str, str]:
        return {
            "source": safe_source_id(incident.source_id),
            "label": safe_label(incident.label or alert.label or "unknown"),
            "score": f"{incident.max_score:.2f}" if incident.max_score is not None else "n/a",
            "count": str(incident.alert_count),
            "first": self.when(incident.opened_at),
            "last": self.when(incident.last_alert_at),
        }

    def _prefix(self, stage: str, incident: Incident | None, lang: str) -> str:
        name, number = parse_stage(stage)
        if name != DeliveryStage.escalation:
            return ""
        chain = incident.escalation if incident is not None else None
        total = len((chain or {}).get("steps") or []) * (int((chain or {}).get("repeat") or 0) + 1)
        if total > 1:
            return _ESCALATION_STEP[lang].format(k=number, n=total)
        return _ESCALATION[lang]

    def _short(self, alert: Alert, stage: str, incident: Incident | None, lang: str) -> str:
        name, _ = parse_stage(stage)
        if incident is not None and name == DeliveryStage.update:
            return _UPDATE_SHORT[lang].format(**self._incident_vars(alert, incident))
        if incident is not None and name == DeliveryStage.resolve:
            return _RESOLVE_SHORT[lang].format(**self._incident_vars(alert, incident))
        kind = AlertKind(alert.kind)
        return self._prefix(stage, incident, lang) + _SHORT[lang][kind].format(
            **vars(self._parts(alert, lang))
        )

    def short_lines(
        self, alert: Alert, stage: str = DeliveryStage.notify, incident: Incident | None = None
    ) -> list[str]:
        return [self._short(alert, stage, incident, lang) for lang in self.settings.languages]

    def summary(self, alert: Alert) -> str:
        """The stored text shown in `GET /api/v1/alerts` (every language, one line each)."""
        return "\n".join(self.short_lines(alert))

    def _full(
        self, alert: Alert, stage: str, incident: Incident | None, lang: str, ack_url: str | None
    ) -> str:
        name, _ = parse_stage(stage)
        if incident is not None and name in (DeliveryStage.update, DeliveryStage.resolve):
            text = self._short(alert, stage, incident, lang).removeprefix("[Sentinel] ")
            text += ("\n확인: " if lang == "ko" else "\nOpen: ") + self.settings.link_url
        else:
            kind = AlertKind(alert.kind)
            text = self._prefix(stage, incident, lang) + _FULL[lang][kind].format(
                **vars(self._parts(alert, lang))
            )
        if ack_url:
            text += "\n" + _ACK_LINE[lang].format(url=ack_url)
        return text

    def message(
        self,
        alert: Alert,
        stage: str = DeliveryStage.notify,
        incident: Incident | None = None,
        ack_url: str | None = None,
    ) -> AlertMessage:
        parts = self._parts(alert)
        kind = AlertKind(alert.kind)
        short = self.short_lines(alert, stage, incident)
        full = "\n\n".join(
            self._full(alert, stage, incident, lang, ack_url) for lang in self.settings.languages
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
            incident_id=incident.id if incident is not None else alert.incident_id,
            ack_url=ack_url,
        )
