"""Email through Django's email backend (SMTP in production, locmem in tests)."""

import smtplib
import socket

from django.conf import settings
from django.core.mail import EmailMessage

from .base import Sent, TransportError


def configured() -> bool:
    return bool(settings.EMAIL_HOST)


def send(*, to: str, subject: str, body: str, message_id: str) -> Sent:
    """Send one plain-text email. Raises TransportError.

    SMTP has no idempotency key; a timeout after DATA may mean it was sent (ambiguous).
    """
    headers = {"Message-ID": f"<{message_id}@warroom>"}
    message = EmailMessage(subject=subject, body=body, to=[to], headers=headers)
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransportError(f"the mail server refused {to}", permanent=True) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportError("the mail server refused our credentials", permanent=True) from exc
    except smtplib.SMTPConnectError as exc:
        raise TransportError(f"could not connect to the mail server: {exc}") from exc
    except ConnectionRefusedError as exc:
        raise TransportError(f"could not connect to the mail server: {exc}") from exc
    except (socket.timeout, smtplib.SMTPServerDisconnected) as exc:
        raise TransportError(f"the mail server stopped answering: {exc}", ambiguous=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"email failed: {exc}", ambiguous=True) from exc
    return Sent(provider_id=headers["Message-ID"])
