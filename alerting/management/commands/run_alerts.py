"""``manage.py run_alerts [--once]``: the alerting worker.

Every ``alerts.evaluation_interval`` it evaluates every enabled rule (alerting.evaluation) and then
delivers the due notifications of the outbox (alerting.delivery). ``--once`` runs one evaluation
and one delivery pass and exits (cron, tests). Once an hour it also creates the coming days' result
partitions (PostgreSQL, results.partitions), so they exist without a scheduled prune. Several copies
may run at once: rules are locked per tenant with SKIP LOCKED and notifications are leased, so each
is evaluated and sent once. SIGTERM (or SIGINT) finishes the current pass, then exits. ``serve`` runs
one beside the web server."""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from alerting.delivery import deliver_due
from alerting.evaluation import evaluate
from alerting.gauges import EVALUATION_SECONDS
from results.partitions import partitions_ensure

log = logging.getLogger("smotra.alerts")

PARTITIONS_EVERY = 3600.0  # seconds between checks for missing result partitions


class Command(BaseCommand):
    partitions_due = 0.0  # time.monotonic() of the next partitions_ensure
    help = "Evaluate alert rules and deliver notifications every alerts.evaluation_interval (--once: one pass)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One evaluation and one delivery pass, then exit.")

    def handle(self, *args, once=False, **options):
        stop = threading.Event()
        if not once:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            self.stdout.write(f"smotra: alerting every {settings.SMOTRA.alerts.evaluation_interval:g} s")
            self.stdout.flush()
        while True:
            self.one_pass(verbose=once)
            if once or stop.wait(settings.SMOTRA.alerts.evaluation_interval):
                return

    def one_pass(self, *, verbose: bool) -> None:
        if not connection.in_atomic_block:  # (a test's transaction holds it open on purpose)
            close_old_connections()  # a connection the database dropped between passes is replaced
        stats, sent = None, 0
        if time.monotonic() >= self.partitions_due:
            self.partitions_due = time.monotonic() + PARTITIONS_EVERY
            try:
                partitions_ensure()
            except Exception:  # e.g. a lock timeout: results still land (the default partition)
                log.exception("creating result partitions failed")
        try:
            stats = evaluate()
            EVALUATION_SECONDS.observe(stats.seconds)
        except Exception:  # one bad pass must not end the worker, nor stop deliveries; the next retries
            log.exception("alerting evaluation failed")
            if verbose:
                raise
        try:
            sent = deliver_due()
        except Exception:
            log.exception("alerting delivery failed")
            if verbose:
                raise
        if stats is None:
            return
        if verbose or stats.opened or stats.resolved or sent:
            self.stdout.write(
                f"evaluated {stats.rules} rule(s) in {stats.seconds:.3f} s: {stats.opened} opened, "
                f"{stats.resolved} resolved, {stats.reminders} reminder(s); {sent} notification(s) attempted"
            )
