"""The Dashboard's health charts (pyqtgraph), one module per chart.

PySide6 is imported before pyqtgraph so that pyqtgraph binds to it and not to another Qt
binding that happens to be installed.
"""

from __future__ import annotations

import PySide6.QtCore  # noqa: F401  (before pyqtgraph: it picks the Qt binding already loaded)
