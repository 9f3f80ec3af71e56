"""The Qt-free heart of Relaydesk: storage, delivery, health and secrets.

Nothing under this package may import PySide6, pyqtgraph or ``desktop_app.ui``;
``tests/unit/test_architecture.py`` enforces it.
"""
