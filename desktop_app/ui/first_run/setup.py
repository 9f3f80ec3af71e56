"""What the first-run wizard saves, how it says so, and the saving itself (run on the loop
thread: the keyring and SQLite block)."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.adding import add_providers, describe_server
from desktop_app.core.workspace import Workspace

DEMO_SUGGESTION = "To see Relaydesk at work without touching real servers, run: relaydesk --demo"


@dataclass(frozen=True, slots=True)
class FirstRunSetup:
    """Everything the wizard gathered; nothing of it is stored until ``save_setup``."""

    from_name: str
    from_address: str
    #: (provider, typed password or None), in the order they were set up.
    providers: tuple[tuple[ProviderConfig, str | None], ...]

    def in_priority_order(self) -> list[tuple[ProviderConfig, str | None]]:
        return sorted(self.providers, key=lambda entry: entry[0].priority)


def save_setup(workspace: Workspace, setup: FirstRunSetup) -> FirstRunSetup:
    """Store the providers (passwords to the OS keyring) and the sender identity, all or
    nothing: a keyring that is not there leaves the workspace as it was."""
    added = add_providers(workspace, setup.providers)
    try:
        workspace.set_setting("identity.from_name", setup.from_name)
        workspace.set_setting("identity.from_address", setup.from_address)
    except BaseException:
        for provider in added:
            workspace.remove_provider(provider.name)
        raise
    return setup


def describe_setup(setup: FirstRunSetup) -> str:
    """The finish page's summary: who sends, through which providers, and their passwords."""
    sender = f"{setup.from_name} <{setup.from_address}>" if setup.from_name else setup.from_address
    lines = [f"Sender: {sender}", "", "Providers, most preferred first:"]
    without_password: list[str] = []
    for number, (config, password) in enumerate(setup.in_priority_order(), start=1):
        if password:
            login = f"user {config.username}, password in the OS keyring"
        elif config.username:
            login = f"user {config.username}, no password yet"
            without_password.append(config.name)
        else:
            login = "no login"
        lines.append(
            f"  {number}. {config.name}: {describe_server(config)}, priority "
            f"{config.priority}; {login}"
        )
    if without_password:
        lines += [
            "",
            f"Set the password of {', '.join(without_password)} afterwards: Providers page, Edit.",
        ]
    return "\n".join(lines)
