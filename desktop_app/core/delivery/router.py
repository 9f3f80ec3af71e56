"""Which provider gets the next message: best priority tier first, then by weight.

The routing rule (desktop_app/ARCHITECTURE.md, "Routing rules"): a provider at a later
priority takes a message only when every provider before it is *unusable* for that message
(disabled, in maintenance, breaker open with no trial free, rate limit used up for longer
than a moment, not authorized for the From domain, already failed for this message). *Busy*
is not unusable: when the best usable tier has no free connection, the message waits for
one (``Route.wait``). A backup is a backup, not an overflow.

Within a tier, smooth weighted round robin (nginx's algorithm) spreads picks evenly instead of
in bursts: weights 5:1:1 give a,a,b,a,c,a,a rather than a,a,a,a,a,b,c, so a small provider is
not hit with its whole share at once and a big one gets breathing room between connections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from desktop_app.core.models import ProviderConfig

_Key = int | str


@dataclass(frozen=True, slots=True)
class Route:
    """The router's answer: a provider, or wait for the best usable tier, or nobody."""

    provider: ProviderConfig | None = None
    wait: bool = False  # a usable provider exists for this message but all of them are busy


NOBODY = Route()
WAIT = Route(wait=True)


def _key(provider: ProviderConfig) -> _Key:
    # The id survives renames; an unsaved provider (id None) has only its unique name.
    return provider.id if provider.id is not None else provider.name


class Router:
    """Chooses a provider per message; keeps the round-robin state between calls."""

    def __init__(self) -> None:
        self._current: dict[_Key, int] = {}

    def choose(
        self,
        providers: Sequence[ProviderConfig],
        sender_domain: str,
        usable: Callable[[ProviderConfig], bool],
        has_room: Callable[[ProviderConfig], bool] = lambda _provider: True,
    ) -> ProviderConfig | None:
        """The provider for the next message, or None if none is usable or all are busy.

        See ``route`` (this is its answer without the reason).
        """
        return self.route(providers, sender_domain, usable, has_room).provider

    def route(
        self,
        providers: Sequence[ProviderConfig],
        sender_domain: str,
        usable: Callable[[ProviderConfig], bool],
        has_room: Callable[[ProviderConfig], bool] = lambda _provider: True,
    ) -> Route:
        """Where the next message from ``sender_domain`` goes.

        ``usable`` is the engine's view of everything the configuration does not say: breaker,
        quota, maintenance, "already failed for this message"; ``has_room`` says whether a
        usable provider can take one more message now (a free connection, quota this moment).
        Both are asked only about enabled, authorized providers and should be pure queries.
        The first tier with a usable provider decides: one of its providers with room (by
        weight), else ``WAIT``; later tiers are not looked at.
        """
        present = {_key(p) for p in providers}
        for gone in self._current.keys() - present:
            del self._current[gone]

        for priority in sorted({p.priority for p in providers}):
            candidates = [
                p
                for p in providers
                if p.priority == priority
                # Weight 0 can only come from unvalidated input; read it as "no traffic".
                and p.weight > 0
                and p.enabled
                and p.authorizes(sender_domain)
                and usable(p)
            ]
            if not candidates:
                continue
            free = [p for p in candidates if has_room(p)]
            return Route(self._pick(free)) if free else WAIT
        return NOBODY

    def _pick(self, candidates: list[ProviderConfig]) -> ProviderConfig:
        # nginx SWRR: everyone gains its weight, the richest is chosen and pays the total.
        # Only usable candidates take part, so a provider that is skipped for a while keeps
        # its place instead of being owed a burst when it returns.
        for provider in candidates:
            key = _key(provider)
            self._current[key] = self._current.get(key, 0) + provider.weight
        # max() keeps the first of equals: ties go to the earlier provider in the list.
        best = max(candidates, key=lambda p: self._current[_key(p)])
        self._current[_key(best)] -= sum(p.weight for p in candidates)
        return best
