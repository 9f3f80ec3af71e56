"""The PySide6 face of Relaydesk: shows core state and forwards intents, nothing more."""
