"""E-mail over SMTP with aiosmtplib (STARTTLS and login optional): the full alert text.

SMTP replies 4xx are temporary (retry), 5xx permanent (failed); a refused login is permanent.
The Message-ID is derived from the delivery, so a repeated delivery is recognisable.
"""

from __future__ import annotations

import unicodedata
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from app.clients.notifiers.base import AlertMessage, DeliveryResult
from app.core.settings import AlertSettings


def header_text(value: str, limit: int = 200) -> str:
    """User-derived text fit for one header: controls, format characters (bidi, zero-width)
    and line/paragraph separators dropped, whitespace runs as one space, cut to `limit`.

    A CR, LF or U+2028 in a header value makes `EmailMessage` raise (the alert then failed
    delivery) or, folded by hand, could add headers. The policy folds long values itself.
    """
    out: list[str] = []
    for ch in value:
        category = unicodedata.category(ch)
        if category[0] == "C" or category in ("Zl", "Zp"):
            ch = " " if ch in "\r\n\t\u2028\u2029\x85" else ""
        if ch.isspace():
            ch = "" if out and out[-1] == " " else " "
        if ch:
            out.append(ch)
    return "".join(out).strip()[:limit]


class EmailNotifier:
    """Sends one plain-text (UTF-8) e-mail per alert to `ALERT_EMAIL_TO`."""

    name = "email"

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.settings.email_to.split(",") if a.strip()]

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.email_from and self.recipients)

    def build(self, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.email_from
        mail["To"] = ", ".join(self.recipients)
        mail["Subject"] = header_text(message.subject) or "[Sentinel] alert"
        mail["Date"] = formatdate(localtime=False)
        domain = self.settings.email_from.rpartition("@")[2] or "sentinel.local"
        # A stage may carry a number (`update:2`); ':' is not allowed in a Message-ID.
        stage = message.stage.replace(":", "-")
        mail["Message-ID"] = f"<{message.alert_id}.{stage}@{domain}>"
        mail["X-Sentinel-Delivery"] = header_text(message.delivery_key)
        mail.set_content(message.text)
        return mail

    async def send(self, message: AlertMessage) -> DeliveryResult:
        if not self.configured:
            return DeliveryResult.unconfigured(
                "e-mail is not configured: set SMTP_HOST, ALERT_EMAIL_FROM and ALERT_EMAIL_TO"
            )
        s = self.settings
        try:
            await aiosmtplib.send(
                self.build(message),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=s.smtp_starttls,
                timeout=s.http_timeout_secs,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return DeliveryResult.failed(f"SMTP login refused ({exc.code})")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            permanent = all(code >= 500 for code in codes)
            detail = f"SMTP server refused the recipients ({', '.join(map(str, codes))})"
            return DeliveryResult.failed(detail) if permanent else DeliveryResult.retry(detail)
        except aiosmtplib.SMTPResponseException as exc:
            detail = f"SMTP server answered {exc.code}: {str(exc.message)[:200]}"
            return (
                DeliveryResult.failed(detail) if exc.code >= 500 else DeliveryResult.retry(detail)
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return DeliveryResult.retry(f"SMTP server unreachable: {type(exc).__name__}")
        return DeliveryResult.ok()
