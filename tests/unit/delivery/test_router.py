"""Provider choice: priority tiers, failover between tiers, smooth weighted round robin."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence

from desktop_app.core.delivery.router import NOBODY, WAIT, Router
from desktop_app.core.models import ProviderConfig, Security


def provider(
    name: str,
    *,
    priority: int = 0,
    weight: int = 1,
    enabled: bool = True,
    sender_domains: tuple[str, ...] = (),
    id: int | None = None,
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        host=f"smtp.{name}.example",
        port=465,
        security=Security.TLS,
        priority=priority,
        weight=weight,
        enabled=enabled,
        sender_domains=sender_domains,
        id=id,
    )


def always(_: ProviderConfig) -> bool:
    return True


def picks(
    router: Router,
    providers: Sequence[ProviderConfig],
    count: int,
    usable: Callable[[ProviderConfig], bool] = always,
    domain: str = "example.com",
) -> list[str | None]:
    chosen = [router.choose(providers, domain, usable) for _ in range(count)]
    return [p.name if p else None for p in chosen]


def test_swrr_5_1_1_interleaves_like_nginx() -> None:
    providers = [provider("a", weight=5), provider("b"), provider("c")]
    assert picks(Router(), providers, 7) == ["a", "a", "b", "a", "c", "a", "a"]


def test_swrr_distribution_is_exact_per_cycle() -> None:
    providers = [provider("a", weight=3), provider("b", weight=2), provider("c", weight=1)]
    router = Router()
    for _ in range(5):
        assert Counter(picks(router, providers, 6)) == {"a": 3, "b": 2, "c": 1}


def test_equal_weights_alternate_in_list_order() -> None:
    providers = [provider("a"), provider("b"), provider("c")]
    assert picks(Router(), providers, 6) == ["a", "b", "c", "a", "b", "c"]


def test_best_tier_wins_whatever_the_weights() -> None:
    providers = [provider("backup", priority=1, weight=100), provider("main", priority=0)]
    assert picks(Router(), providers, 3) == ["main", "main", "main"]


def test_fails_over_to_next_tier_when_best_tier_is_unusable() -> None:
    providers = [
        provider("a", priority=0),
        provider("b", priority=0),
        provider("c", priority=1),
        provider("d", priority=2),
    ]

    def not_tier_0(p: ProviderConfig) -> bool:
        return p.priority != 0

    assert picks(Router(), providers, 2, not_tier_0) == ["c", "c"]
    assert picks(Router(), providers, 1, lambda p: p.name == "d") == ["d"]


def test_none_when_nothing_is_usable() -> None:
    providers = [provider("a"), provider("b", priority=1)]
    assert Router().choose(providers, "example.com", lambda _: False) is None
    assert Router().choose([], "example.com", always) is None


def test_unusable_provider_within_tier_is_skipped() -> None:
    providers = [provider("a", weight=5), provider("b"), provider("c")]
    assert picks(Router(), providers, 4, lambda p: p.name != "a") == ["b", "c", "b", "c"]


def test_disabled_providers_are_skipped_and_not_asked_about() -> None:
    asked: list[str] = []

    def usable(p: ProviderConfig) -> bool:
        asked.append(p.name)
        return True

    providers = [provider("off", enabled=False), provider("on", priority=1)]
    assert picks(Router(), providers, 2, usable) == ["on", "on"]
    assert "off" not in asked


def test_lower_tiers_are_not_asked_when_a_better_one_is_usable() -> None:
    asked: list[str] = []

    def usable(p: ProviderConfig) -> bool:
        asked.append(p.name)
        return True

    providers = [provider("main"), provider("backup", priority=1)]
    Router().choose(providers, "example.com", usable)
    assert asked == ["main"]


def test_sender_domain_authorization() -> None:
    providers = [
        provider("acme-only", sender_domains=("acme.com",)),
        provider("anyone", priority=1),
    ]
    router = Router()
    assert picks(router, providers, 1, domain="acme.com") == ["acme-only"]
    assert picks(router, providers, 1, domain="news.acme.com") == ["acme-only"]
    assert picks(router, providers, 1, domain="NEWS.ACME.COM") == ["acme-only"]
    assert picks(router, providers, 1, domain="notacme.com") == ["anyone"]
    assert picks(router, providers, 1, domain="acme.com.evil.example") == ["anyone"]


def test_unauthorized_everywhere_is_none() -> None:
    providers = [provider("a", sender_domains=("acme.com",))]
    assert Router().choose(providers, "other.org", always) is None


def test_zero_weight_gets_no_traffic() -> None:
    providers = [provider("drained", weight=0), provider("b", priority=1)]
    assert picks(Router(), providers, 2) == ["b", "b"]


def test_state_survives_changed_provider_lists() -> None:
    router = Router()
    a, b, c = provider("a", weight=5, id=1), provider("b", id=2), provider("c", id=3)
    assert picks(router, [a, b, c], 3) == ["a", "a", "b"]
    # A new, equal list object (e.g. after reloading settings) continues the same sequence.
    reloaded = [dataclasses.replace(p) for p in (a, b, c)]
    assert picks(router, reloaded, 4) == ["a", "c", "a", "a"]


def test_state_follows_id_across_renames() -> None:
    router = Router()
    a, b = provider("a", weight=2, id=1), provider("b", id=2)
    assert picks(router, [a, b], 1) == ["a"]  # currents: a -1, b +1
    renamed = dataclasses.replace(b, name="b-renamed")
    assert picks(router, [a, renamed], 1) == ["b-renamed"]


def test_name_is_the_key_without_id() -> None:
    router = Router()
    providers = [provider("a", weight=2), provider("b")]
    assert picks(router, providers, 1) == ["a"]
    assert picks(router, list(providers), 1) == ["b"]


def test_removed_providers_are_forgotten() -> None:
    router = Router()
    a, b = provider("a", weight=2, id=1), provider("b", id=2)
    assert picks(router, [a, b], 1) == ["a"]  # currents: a -1, b +1
    assert picks(router, [a], 1) == ["a"]  # b removed: its +1 is forgotten
    # b comes back at 0 and ties with a (a wins ties); had b kept its +1 it would go first.
    assert picks(router, [a, b], 3) == ["a", "b", "a"]


def test_added_provider_joins_the_rotation() -> None:
    router = Router()
    a, b = provider("a"), provider("b")
    assert picks(router, [a], 2) == ["a", "a"]
    assert Counter(picks(router, [a, b], 4)) == {"a": 2, "b": 2}


def test_providers_are_not_mutated() -> None:
    providers = [provider("a", weight=5), provider("b", priority=1)]
    before = [dataclasses.asdict(p) for p in providers]
    picks(Router(), providers, 10)
    assert [dataclasses.asdict(p) for p in providers] == before


# -- busy is not unusable (the routing rules' "busy waits" row) ------------------------------


def test_a_busy_first_tier_means_wait_not_the_next_tier() -> None:
    primary, backup = provider("primary", priority=1), provider("backup", priority=2)
    route = Router().route([primary, backup], "example.com", always, lambda p: p is not primary)
    assert route == WAIT
    assert route.provider is None


def test_a_busy_provider_leaves_the_message_to_a_free_one_of_its_tier() -> None:
    busy, free = provider("busy", priority=1), provider("free", priority=1)
    backup = provider("backup", priority=2)
    router = Router()
    for _ in range(5):
        route = router.route([busy, free, backup], "example.com", always, lambda p: p is free)
        assert route.provider is free


def test_an_unusable_first_tier_falls_through_to_the_next_whatever_its_room() -> None:
    primary, backup = provider("primary", priority=1), provider("backup", priority=2)
    usable = lambda p: p is not primary  # noqa: E731
    route = Router().route([primary, backup], "example.com", usable, lambda p: True)
    assert route.provider is backup
    # An unusable provider's (lack of) room is never asked about.
    asked: list[str] = []

    def room(p: ProviderConfig) -> bool:
        asked.append(p.name)
        return True

    Router().route([primary, backup], "example.com", usable, room)
    assert asked == ["backup"]


def test_nobody_usable_is_nobody_and_busy_later_tiers_still_mean_wait() -> None:
    primary, backup = provider("primary", priority=1), provider("backup", priority=2)
    assert Router().route([primary, backup], "example.com", lambda p: False) == NOBODY
    usable = lambda p: p is backup  # noqa: E731
    assert Router().route([primary, backup], "example.com", usable, lambda p: False) == WAIT
