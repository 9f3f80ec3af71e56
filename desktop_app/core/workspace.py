"""A data directory opened for use: the one entry point the CLI and the GUI share.

Anything the GUI can do to providers, the outbox or settings is a plain method here first,
so the two faces of Relaydesk can never drift apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_app.core.bounces.checker import MailboxChecker, MailboxTest
from desktop_app.core.bounces.delivery_probes import DeliveryProber
from desktop_app.core.bounces.imap_session import MailboxError
from desktop_app.core.bounces.mailboxes import MailboxConfig, validate_mailbox
from desktop_app.core.bounces.processor import MailboxReport
from desktop_app.core.bounces.watcher import MailboxWatcher, WatchOptions
from desktop_app.core.campaigns.addresses import (
    InvalidAddressError,
    address_key,
    normalize_address,
)
from desktop_app.core.campaigns.csv_import import ColumnMapping, parse_subscribers
from desktop_app.core.campaigns.manager import CampaignManager
from desktop_app.core.campaigns.runner import CampaignRunner
from desktop_app.core.change_feed import ChangeFeed
from desktop_app.core.delivery.engine import DeliveryEngine
from desktop_app.core.disk_space import DiskReserve
from desktop_app.core.errors import (
    DuplicateProviderError,
    KeyringUnavailableError,
    ProviderNotFoundError,
    RejectedRowsError,
    UserInputError,
)
from desktop_app.core.events import EventSink
from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.health.maintenance import active_window, validate_window
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.health.probe import ProbeResult, probe_provider
from desktop_app.core.health.report import LiveStates, compute_figures
from desktop_app.core.models import (
    MaintenanceWindow,
    OutboxCounts,
    ProviderConfig,
    ProviderLiveState,
)
from desktop_app.core.paths import resolve_data_dir
from desktop_app.core.provider_state import ProviderStateBoard, state_word
from desktop_app.core.secrets import SecretStore
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.alerts import AlertRepository, LoggedAlert
from desktop_app.core.storage.bounces import BounceRepository
from desktop_app.core.storage.campaigns import CampaignRepository
from desktop_app.core.storage.database import DATABASE_FILENAME, Database
from desktop_app.core.storage.delivery_probes import DeliveryProbeRepository
from desktop_app.core.storage.health import HealthRepository
from desktop_app.core.storage.lists import (
    ImportReport,
    ListRepository,
    SubscriberList,
    Suppression,
)
from desktop_app.core.storage.mailboxes import MailboxRepository
from desktop_app.core.storage.maintenance import MaintenanceRepository
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository
from desktop_app.core.storage.provider_states import ProviderStateRepository
from desktop_app.core.storage.providers import ProviderRepository
from desktop_app.core.validation import check_no_line_breaks, validate_provider_config
from desktop_app.core.wording import count_of

log = logging.getLogger(__name__)

#: A CSV file larger than this is refused before it is read (1,000,000 rows of 200 bytes).
MAX_IMPORT_BYTES = 200 * 1024 * 1024


class Workspace:
    """One data directory: its database, settings, providers and their secrets."""

    def __init__(self, data_dir: Path, database: Database, secrets: SecretStore | None = None):
        self.data_dir = data_dir
        self.database = database
        self.providers = ProviderRepository(database)
        self.maintenance = MaintenanceRepository(database)
        self.outbox = OutboxRepository(database)
        self.settings = SettingsStore(database)
        self.health = HealthRepository(database)
        self.provider_states = ProviderStateRepository(database)
        self.lists = ListRepository(database)
        self.secrets = secrets or SecretStore()
        self.mailboxes = MailboxRepository(database)
        self.bounces = BounceRepository(database)
        self.delivery_probes = DeliveryProbeRepository(database)
        self.alerts = AlertRepository(database)
        self.campaign_store = CampaignRepository(database, self.outbox)
        #: Campaigns as the window and the command line drive them (campaigns/manager.py).
        self.campaigns = CampaignManager(
            self.campaign_store,
            self.lists,
            self.outbox,
            self.providers,
            self.secrets,
            self.bounces,
        )
        self._changes: ChangeFeed | None = None
        self._changes_lock = threading.Lock()

    @property
    def changes(self) -> ChangeFeed:
        """The change feed of this data directory (core/change_feed.py), made on first use.

        Not started here: whoever runs the engine, monitor or window calls ``start()``.
        """
        with self._changes_lock:
            if self._changes is None:
                self._changes = ChangeFeed.for_database(self.database)
            return self._changes

    @classmethod
    def open(cls, data_dir: str | Path | None = None) -> Workspace:
        """Open (creating and migrating as needed) the workspace in ``data_dir``."""
        directory = resolve_data_dir(data_dir)
        database = Database.open_file(directory / DATABASE_FILENAME)
        return cls(directory, database)

    def close(self) -> None:
        with self._changes_lock:
            changes, self._changes = self._changes, None
        if changes is not None:
            changes.close()
        self.database.dispose()

    # -- providers -------------------------------------------------------------------------

    def list_providers(self) -> list[ProviderConfig]:
        return self.providers.all()

    def get_provider(self, name: str) -> ProviderConfig:
        return self.providers.get(name)

    def add_provider(self, config: ProviderConfig, password: str | None = None) -> ProviderConfig:
        """Validate and store a provider; its password goes to the keyring only."""
        config = validate_provider_config(config)
        _check_password(config, password)
        if any(p.name == config.name for p in self.providers.all()):
            raise DuplicateProviderError(config.name)
        config = dataclasses.replace(config, uid=str(uuid.uuid4()))
        if password:
            # Keyring first: if it is unavailable, nothing at all has been stored.
            self.secrets.set_password(config.uid, password)
        try:
            return self.providers.add(config)
        except Exception:
            if password:
                self.secrets.delete_password(config.uid)
            raise

    def update_provider(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        password: str | None = None,
    ) -> ProviderConfig:
        """Change some fields of a provider (and optionally its password)."""
        current = self.providers.get(name)
        try:
            config = dataclasses.replace(current, **changes)
        except TypeError as exc:
            raise UserInputError(f"unknown provider field: {exc}") from None
        config = validate_provider_config(config)
        _check_password(config, password)
        if password:
            self.secrets.set_password(config.uid, password)
        return self.providers.update(name, config)

    def remove_provider(self, name: str) -> ProviderConfig:
        removed = self.providers.remove(name)
        try:
            self.secrets.delete_password(removed.uid)
        except KeyringUnavailableError:
            log.warning("provider %s removed; its keyring entry could not be deleted", name)
        return removed

    def reorder_providers(self, ordered_names: Sequence[str]) -> None:
        """Priorities 0, 1, 2... in this order (what drag and drop does)."""
        known = {p.name for p in self.providers.all()}
        for name in ordered_names:
            if name not in known:
                raise ProviderNotFoundError(name)
        self.providers.set_priorities(list(ordered_names))

    def provider_password(self, provider: ProviderConfig) -> str | None:
        if not provider.username:
            return None
        return self.secrets.get_password(provider.uid)

    async def test_provider(self, name: str, *, timeout: float | None = None) -> ProbeResult:
        """A real connection test (connect, EHLO, STARTTLS, AUTH, NOOP, QUIT).

        The keyring read blocks, so callers on a GUI thread run this on the loop thread.
        """
        # SQLite and the keyring block: keep them off the loop thread's event loop too.
        provider = await asyncio.to_thread(self.providers.get, name)
        password = await asyncio.to_thread(self.provider_password, provider)
        if timeout is None:
            timeout = float(await asyncio.to_thread(self.settings.get, "smtp.timeout_seconds"))
        return await probe_provider(provider, password, timeout=timeout)

    # -- maintenance windows ---------------------------------------------------------------

    def add_maintenance(self, name: str, window: MaintenanceWindow) -> MaintenanceWindow:
        """Check and store a maintenance window of provider ``name``; returns it with its id.

        A running engine picks it up on its next reload (every few seconds).
        """
        return self.maintenance.add(name, validate_window(window))

    def remove_maintenance(self, name: str, window_id: int) -> MaintenanceWindow:
        return self.maintenance.remove(name, window_id)

    def list_maintenance(self, name: str | None = None) -> dict[str, tuple[MaintenanceWindow, ...]]:
        """{provider name: its windows} for every provider (or only ``name``)."""
        return self.maintenance.by_provider(name)

    # -- outbox ----------------------------------------------------------------------------

    def queue(self, messages: Sequence[NewMessage]) -> list[int]:
        """Store messages durably in one transaction; returns their outbox ids."""
        return self.outbox.enqueue(messages)

    def outbox_counts(self) -> OutboxCounts:
        return self.outbox.counts()

    # -- alerts ----------------------------------------------------------------------------

    def recent_alerts(self, limit: int = 500, *, open_only: bool = False) -> list[LoggedAlert]:
        """The alert log, newest first (``open_only``: not cleared yet)."""
        return self.alerts.recent(limit, open_only=open_only)

    def acknowledge_alert(self, alert_id: int) -> LoggedAlert:
        """Someone is on it: the alert as it now is (one line for an unknown id)."""
        return self.alerts.acknowledge(alert_id, time.time())

    # -- settings --------------------------------------------------------------------------

    def get_setting(self, key: str) -> Any:
        return self.settings.get(key)

    def set_setting(self, key: str, text: str) -> Any:
        return self.settings.set_text(key, text)

    # -- delivery --------------------------------------------------------------------------

    def create_engine(
        self,
        events: EventSink,
        *,
        exclusive: bool = True,
        board: ProviderStateBoard | None = None,
    ) -> DeliveryEngine:
        """An engine over this workspace; run it on the loop thread (core/runtime.py)."""
        return DeliveryEngine(
            self.outbox,
            self.providers,
            self.settings,
            self.secrets,
            events,
            exclusive=exclusive,
            board=board,
            # Room for the outcomes in flight should the disk fill up (core/disk_space.py).
            reserve=DiskReserve(self.data_dir),
        )

    def create_provider_board(self, events: EventSink) -> ProviderStateBoard:
        """The provider-state home for a sending app, starting from what was stored."""
        return ProviderStateBoard(events, stored=self.provider_states.load())

    def provider_live_states(self) -> dict[str, ProviderLiveState]:
        """Each provider's live state as last stored, by uid (for views in any process).

        Providers never stored yet are ``unknown``; a disabled one is ``disabled`` whatever
        was stored (the flag is the configuration's, and may have changed since).
        """
        stored = self.provider_states.load()
        now = time.time()
        states: dict[str, ProviderLiveState] = {}
        for provider in self.providers.all():
            live = stored.get(provider.uid) or ProviderLiveState(provider.uid, provider.name)
            in_window = active_window(provider.maintenance, now) is not None
            live = dataclasses.replace(
                live,
                provider_name=provider.name,
                enabled=provider.enabled,
                in_maintenance=in_window,
            )
            states[provider.uid] = dataclasses.replace(live, state=state_word(live))
        return states

    def create_campaign_runner(self, events: EventSink, **options: Any) -> CampaignRunner:
        """The campaign runner; run it on the loop thread next to the engine, under the lock."""
        return CampaignRunner(
            self.campaign_store, self.bounces, self.settings, self.secrets, events, **options
        )

    # -- mailboxes (bounces, unsubscribe requests, delivery probes) ----------------------------

    def mailbox_checker(self) -> MailboxChecker:
        return MailboxChecker(
            self.mailboxes,
            self.bounces,
            self.secrets,
            lambda: int(self.settings.get("bounces.soft_limit")),
            probes=self.delivery_probes,
        )

    def create_delivery_prober(self, events: EventSink, **options: Any) -> DeliveryProber:
        """End-to-end delivery probes; run on the loop thread (off unless configured)."""
        return DeliveryProber(
            self.delivery_probes, self.providers, self.settings, self.secrets, events, **options
        )

    def create_mailbox_watcher(self, events: EventSink) -> MailboxWatcher:
        """Watches the bounce and unsubscribe mailboxes; run it on the loop thread."""
        return MailboxWatcher(
            self.mailbox_checker(),
            events,
            options=lambda: WatchOptions(
                poll_seconds=float(self.settings.get("bounces.poll_seconds"))
            ),
        )

    def configure_mailbox(self, config: MailboxConfig, password: str | None) -> MailboxConfig:
        """Add a mailbox (a password is needed) or change one (the password stays unless
        given). The password goes to the keyring, never the database."""
        config = validate_mailbox(config)
        if password is not None:
            check_no_line_breaks("password", password)
        try:
            existing: MailboxConfig | None = self.mailboxes.get(config.name)
        except UserInputError:
            existing = None
        if existing is None and not password:
            raise UserInputError("a new mailbox needs its password (--password-stdin)")
        saved = self.mailboxes.save(config)
        if password:
            try:
                self.secrets.set_mailbox_password(saved.uid, password)
            except KeyringUnavailableError:
                if existing is None:
                    self.mailboxes.remove(saved.name)  # no half-configured mailbox
                raise
        return saved

    def test_mailbox(self, config: MailboxConfig, password: str | None = None) -> MailboxTest:
        """Log in and open the folder with these settings (the password typed, or the one
        stored for the mailbox); reads and moves nothing."""
        return self.mailbox_checker().test(validate_mailbox(config), password)

    def remove_mailbox(self, name: str) -> MailboxConfig:
        removed = self.mailboxes.remove(name)
        self.secrets.delete_mailbox_password(removed.uid)
        return removed

    def check_mailboxes(self) -> list[MailboxReport | MailboxError]:
        """Read every enabled mailbox once (``bounces check``): bounces, unsubscribe
        requests, delivery probes."""
        checker = self.mailbox_checker()
        results: list[MailboxReport | MailboxError] = []
        for mailbox in self.mailboxes.all():
            if not mailbox.enabled:
                continue
            try:
                results.append(checker.check(mailbox))
            except MailboxError as error:
                results.append(error)
        return results

    def pending_work(self) -> int:
        """What ``run --until-idle`` waits for: mail in the outbox still to deliver, plus
        campaign recipients not yet rendered and scheduled campaigns that are due."""
        return self.outbox.pending_count() + self.campaign_store.pending_work()

    def create_monitor(self, events: EventSink, **options: Any) -> HealthMonitor:
        """A health monitor over this workspace; run it on the loop thread, under the lock.

        Without a ``board`` it keeps its own provider-state home, starting from the stored one.
        """
        options.setdefault("board", self.create_provider_board(events))
        return HealthMonitor(
            self.health,
            self.providers,
            self.settings,
            self.secrets,
            events,
            states=self.provider_states,
            **options,
        )

    # -- subscriber lists ------------------------------------------------------------------

    def create_list(self, name: str) -> SubscriberList:
        return self.lists.create(name)

    def rename_list(self, name: str, new_name: str) -> SubscriberList:
        return self.lists.rename(name, new_name)

    def delete_list(self, name: str) -> None:
        self.lists.delete(name)

    def subscriber_lists(self) -> list[SubscriberList]:
        """Every list with its counts by status, by name."""
        return self.lists.all()

    def get_list(self, name: str) -> SubscriberList:
        return self.lists.get(name)

    def import_list(
        self,
        name: str,
        path: Path,
        *,
        accept_valid: bool = False,
        mapping: ColumnMapping | None = None,
    ) -> ImportReport:
        """Import a CSV file into list ``name`` in one transaction.

        A file that cannot be read as a subscriber list raises UserInputError. With invalid
        rows and ``accept_valid`` false, RejectedRowsError (carrying the report) is raised and
        nothing is imported; with ``accept_valid`` the valid rows are imported and the
        report lists the rejects.
        """
        existing = self.lists.keys(name)  # also: an unknown list fails before the file is read
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                raise UserInputError(
                    f"{path} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; split it"
                )
            data = path.read_bytes()
        except OSError as exc:
            # The file the user named, like send --to-file: bad input (exit 2).
            raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        parsed = parse_subscribers(data, mapping=mapping, existing_keys=existing)
        if parsed.rejects and not accept_valid:
            report = ImportReport(
                list_name=name,
                imported=0,
                duplicates=parsed.duplicates,
                rejects=parsed.rejects,
                encoding=parsed.encoding,
                delimiter=parsed.delimiter,
            )
            count = len(parsed.rejects)
            raise RejectedRowsError(
                f"{count_of(count, 'row')} rejected (first: line "
                f"{parsed.rejects[0].line}, {parsed.rejects[0].reason}); nothing imported; "
                "fix the file or accept the valid rows (--accept-valid)",
                report,
            )
        return self.lists.import_parsed(name, parsed)

    def export_list(self, name: str, path: Path, *, raw: bool = False) -> int:
        """Write list ``name`` to a CSV file; returns the number of subscribers written.

        Formula-like cells are escaped for spreadsheets unless ``raw`` (``csv_cells``)."""
        return self.lists.export_csv(name, path, raw=raw)

    # -- suppression list ------------------------------------------------------------------

    def suppress(self, address: str, reason: str = "manual", detail: str = "") -> Suppression:
        """Never send to ``address`` again, from any list (it must be a valid address)."""
        try:
            key = normalize_address(address.strip()).lower()
        except InvalidAddressError as exc:
            raise UserInputError(f"{address.strip()!r} is not an email address: {exc}") from None
        return self.lists.suppress(key, reason, detail)

    def unsuppress(self, address: str) -> None:
        if not self.lists.unsuppress(address_key(address)):
            raise UserInputError(f"{address.strip()!r} is not on the suppression list")

    def is_suppressed(self, address: str) -> bool:
        return self.lists.is_suppressed(address_key(address))

    def suppressions(self) -> list[Suppression]:
        return self.lists.suppressions()

    # -- health ----------------------------------------------------------------------------

    def health_figures(
        self, *, now: float | None = None, live: LiveStates | None = None
    ) -> list[ProviderFigures]:
        """Uptime, latency, errors, sends and incidents per provider, most preferred first."""
        return compute_figures(
            self.health,
            self.providers.all(),
            time.time() if now is None else now,
            live=self.provider_live_states() if live is None else live,
            uptime_target=float(self.settings.get("health.uptime_target_percent")),
            delivery=self.delivery_probes.figures,
        )


def _check_password(config: ProviderConfig, password: str | None) -> None:
    if password is None:
        return
    check_no_line_breaks("password", password)
    if not config.username:
        raise UserInputError("a password needs a username (--username)")
