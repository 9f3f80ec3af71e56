"""Which provider gets the next message: best priority tier first, then by weight.

Within a tier, smooth weighted round robin (nginx's algorithm) spreads picks evenly instead of
in bursts: weights 5:1:1 give a,a,b,a,c,a,a rather than a,a,a,a,a,b,c, so a small provider is
not hit with its whole share at once and a big one gets breathing room between connections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from desktop_app.core.models import ProviderConfig

_Key = int | str


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
    ) -> ProviderConfig | None:
        """The provider for the next message from ``sender_domain``, or None if none is usable.

        ``usable`` is the engine's view of everything the configuration does not say: breaker,
        quota, a free connection, maintenance, "already failed for this message". It is asked
        only about enabled, authorized providers, tier by tier, and should be a pure query.
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
            if candidates:
                return self._pick(candidates)
        return None

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
