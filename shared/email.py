"""Password-recovery, new-account and test mail over SMTP (stdlib smtplib).

Recovery mail is sent from a small background pool, so the response time of
``/password-recovery/{email}`` does not tell whether the address is registered.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

from shared.config import Settings

logger = logging.getLogger(__name__)

_background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")
DELIVERY_ERRORS = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class Email:
    kind: str  # what the logs name, instead of the subject (which holds the address)
    subject: str
    html: str


class EmailNotConfigured(Exception):
    """SMTP_HOST or EMAILS_FROM_EMAIL is not set."""


def _page(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )


def reset_password_email(settings: Settings, email: str, token: str) -> Email:
    project = html.escape(settings.project_name)
    link = html.escape(f"{settings.frontend_host}/reset-password?token={token}", quote=True)
    hours = settings.email_reset_token_expire_hours
    subject = f"{settings.project_name} - Password recovery for user {email}"
    return Email(
        "password recovery",
        subject,
        _page(
            subject,
            f"Hello {html.escape(email)},",
            f"We received a request to reset the password of your {project} account.",
            f'<a href="{link}">Reset your password</a>',
            f"The link is valid for {hours} hours and works once. "
            "If you did not ask for it, ignore this mail.",
        ),
    )


def new_account_email(settings: Settings, email: str) -> Email:
    project = html.escape(settings.project_name)
    link = html.escape(settings.frontend_host, quote=True)
    subject = f"{settings.project_name} - New account for user {email}"
    return Email(
        "new account",
        subject,
        _page(
            subject,
            f"Welcome to {project}! An account was created for {html.escape(email)}.",
            f'Sign in at <a href="{link}">{link}</a>. Ask your administrator for the password, '
            "or use password recovery to choose your own.",
        ),
    )


def test_email(settings: Settings, email: str) -> Email:
    subject = f"{settings.project_name} - Test email"
    return Email("test", subject, _page(subject, f"Test email for {html.escape(email)}."))


def send(settings: Settings, to: str, message: Email) -> None:
    """Deliver now; raises EmailNotConfigured or an smtplib/OSError on failure."""
    if not settings.emails_enabled:
        raise EmailNotConfigured
    assert settings.smtp_host and settings.emails_from_email
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = formataddr((settings.emails_from_name or "", settings.emails_from_email))
    mail["To"] = to
    mail.set_content("This message needs an HTML-capable mail reader.")
    mail.add_alternative(message.html, subtype="html")
    timeout = settings.smtp_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_ssl:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_tls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(mail)


def send_in_background(settings: Settings, to: str, message: Email) -> Future[None]:
    """Deliver from the mail pool; failures (and missing SMTP settings) are logged, not raised."""

    def deliver() -> None:
        try:
            send(settings, to, message)
        except EmailNotConfigured:
            logger.warning("SMTP is not configured; %s mail was not sent", message.kind)
        except DELIVERY_ERRORS as exc:
            logger.error("%s mail could not be sent: %s", message.kind, type(exc).__name__)

    return _background.submit(deliver)
