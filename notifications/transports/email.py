"""Email through Django's email backend (SMTP in production, locmem in tests)."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .base import Sent, TransportError


def configured() -> bool:
    return bool(settings.EMAIL_HOST)


def send(*, to: str, subject: str, body: str, message_id: str) -> Sent:
    """Send one plain-text email. Raises TransportError.

    Opening the connection (DNS, connect, greeting, TLS, login) sends nothing of the message,
    so its failures are retryable. SMTP has no idempotency key; a failure once the message
    has started going out may mean it was sent (ambiguous).
    """
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportError("the mail server refused our credentials", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Connect timeout, unresolvable host, network unreachable, refused, no greeting.
        raise TransportError(f"could not connect to the mail server: {exc}") from exc
    headers = {"Message-ID": f"<{message_id}@warroom>"}
    message = EmailMessage(subject=subject, body=body, to=[to], headers=headers, connection=connection)
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransportError(f"the mail server refused {to}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"the mail server stopped answering while we sent: {exc}", ambiguous=True) from exc
    finally:
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):
            pass  # QUIT failed; whatever happened to the message has happened
    return Sent(provider_id=headers["Message-ID"])
