"""Real servers on loopback for Relaydesk's tests.

Every helper here starts a real server (aiosmtpd, Postfix's ``smtp-sink``, a private
gnome-keyring Secret Service) bound to 127.0.0.1 only. The fixtures in ``tests/conftest.py``
wrap them; import the classes directly when a test needs finer control.
"""
