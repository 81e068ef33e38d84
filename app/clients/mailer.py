"""Account mail (password reset) over the SMTP server the `email` alert channel uses.

Only the server settings are shared with alerts (SMTP_HOST, SMTP_PORT, SMTP_USERNAME,
SMTP_PASSWORD, SMTP_STARTTLS, ALERT_EMAIL_FROM); the recipient is the account's own address.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from loguru import logger

from app.core.settings import AlertSettings


class AccountMailer:
    """Sends one plain-text UTF-8 mail to one address; failures are logged, never raised
    (the caller answers the same whether or not a mail went out)."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.email_from)

    async def send(self, to: str, subject: str, text: str) -> bool:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.email_from
        mail["To"] = to
        mail["Subject"] = subject  # fixed text: no user input in headers
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=s.email_from.rpartition("@")[2] or None)
        mail.set_content(text)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=s.smtp_starttls,
                timeout=s.http_timeout_secs,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Neither the address nor the text (it carries a token) reaches the log.
            logger.warning("account mail could not be sent: {}", type(exc).__name__)
            return False
        return True
