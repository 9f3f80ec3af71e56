"""The first-run wizard: shown at start while no provider is configured (see wizard.py)."""

from desktop_app.ui.first_run.wizard import (
    FirstRunSetup,
    FirstRunWizard,
    run_first_run_wizard_if_needed,
    should_run_first_run_wizard,
)

__all__ = [
    "FirstRunSetup",
    "FirstRunWizard",
    "run_first_run_wizard_if_needed",
    "should_run_first_run_wizard",
]
