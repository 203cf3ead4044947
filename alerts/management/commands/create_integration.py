"""Create an integration from the shell and print what to paste into the monitoring system.

    python manage.py create_integration --kind alertmanager --business payments
    python manage.py create_integration --kind heartbeat --business payments --level-for-heartbeat P2 --interval 300

The integration gets its kind's default level rules (edit them in /admin/). The URL is on
SITE_URL, the product's public address.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from incidents.models import Level
from roster.models import Business

from ...instructions import alertmanager_yaml, sample_curl, webhook_url
from ...levels import install_defaults
from ...models import HEARTBEAT_GRACE, HEARTBEAT_INTERVAL, Integration

Kind = Integration.Kind
_LISTED = 50  # businesses named in the error for an unknown slug


class Command(BaseCommand):
    help = "Create a monitoring integration for a business and print its URL (and Alertmanager receiver)."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, help=f"One of: {', '.join(Kind.values)}.")
        parser.add_argument("--business", required=True, metavar="SLUG", help="The business's slug.")
        parser.add_argument("--name", help="Default: the business and the kind, e.g. “Payments Alertmanager”.")
        parser.add_argument(
            "--level-for-heartbeat", metavar="LEVEL",
            help="Heartbeat only: the level of the fault when monitoring stops calling (P1..P4; default P2).",
        )
        parser.add_argument(
            "--interval", type=int, metavar="SECONDS",
            help=f"Heartbeat only: how often monitoring calls (default {HEARTBEAT_INTERVAL.seconds}).",
        )
        parser.add_argument(
            "--grace", type=int, metavar="SECONDS", help=f"Heartbeat only: how late a call may be (default {HEARTBEAT_GRACE.seconds}).",
        )

    def handle(self, *args, kind, business, name=None, level_for_heartbeat=None, interval=None, grace=None,
               **options):
        if kind not in Kind.values:
            raise CommandError(f"Unknown kind {kind!r}. Valid kinds: {', '.join(Kind.values)}.")
        found = Business.objects.filter(slug=business).first()
        if found is None:
            raise CommandError(f"No business has the slug {business!r}. {self._valid_businesses()}")
        heartbeat = kind == Kind.HEARTBEAT
        if not heartbeat and (level_for_heartbeat or interval is not None or grace is not None):
            raise CommandError("--level-for-heartbeat, --interval and --grace are for --kind heartbeat only.")
        fields = {}
        if heartbeat:
            fields = {
                "heartbeat_interval": timedelta(seconds=_positive(interval, HEARTBEAT_INTERVAL.seconds, "--interval")),
                "heartbeat_grace": timedelta(seconds=_positive(grace, HEARTBEAT_GRACE.seconds, "--grace", zero=True)),
                "heartbeat_level": _level(level_for_heartbeat or "P2"),
            }
        with transaction.atomic():
            integration = Integration.objects.create(
                name=(name or f"{found.name} {Kind(kind).label}")[:100], kind=kind, business=found, **fields
            )
            rules = install_defaults(integration)

        write = self.stdout.write
        write(self.style.SUCCESS(
            f"Created integration #{integration.pk} “{integration.name}” ({integration.get_kind_display()}) "
            f"for {found.name}."
        ))
        for rule in rules:
            write(f"  rule {rule.position}: {rule.name} (severity {rule.severity}) → {rule.outcome}")
        if heartbeat:
            allowed = integration.heartbeat_allowed.total_seconds()
            write(f"  missed heartbeat (none for {allowed:.0f} s, interval and grace) "
                  f"→ {Level(integration.heartbeat_level).label}; armed by the first call.")
        write("")
        write("Paste this URL into the monitoring system:" if not heartbeat
              else "Have monitoring POST to this URL every interval:")
        write(f"  {webhook_url(integration)}")
        if kind == Kind.ALERTMANAGER:
            write("")
            write(alertmanager_yaml(integration).rstrip())
        write("")
        write("Test it (a critical alert declares a fault):" if not heartbeat else "Call it by hand:")
        write(sample_curl(integration))

    @staticmethod
    def _valid_businesses() -> str:
        slugs = list(Business.objects.order_by("slug").values_list("slug", flat=True)[: _LISTED + 1])
        if not slugs:
            return "There are no businesses yet: add one in /admin/ (Roster › Businesses)."
        more = " …" if len(slugs) > _LISTED else ""
        return f"Valid slugs: {', '.join(slugs[:_LISTED])}{more}."


def _positive(value: int | None, default: int, option: str, *, zero: bool = False) -> int:
    if value is None:
        return default
    if value < 0 or (value == 0 and not zero):
        raise CommandError(f"{option} must be a number of seconds {'of zero or more' if zero else 'above zero'}.")
    return value


def _level(text: str) -> int:
    wanted = text.strip().upper().removeprefix("P")
    for level in Level:
        if str(level.value) == wanted:
            return level.value
    raise CommandError(f"Unknown level {text!r}. Valid levels: {', '.join(level.label for level in Level)}.")
