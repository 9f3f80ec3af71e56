"""The campaign renderer's child process ends with its parent (found by bench_chaos.py).

Each SIGKILL of ``relaydesk run`` during a campaign left its render child behind, waiting
on its queue for ever (two per 20,000-message chaos run). Real processes here: a parent
that renders one batch through a ``RenderPool`` and prints its child's pid, then is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARENT = """
import os, sys
from desktop_app.core.campaigns.message import CampaignSettings
from desktop_app.core.campaigns.render_pool import RenderPool
from desktop_app.core.campaigns.templates import TemplateSet
from desktop_app.core.storage.campaigns import PendingRecipient

def child_pid():
    return os.getpid()

if __name__ == "__main__":
    pool = RenderPool()
    settings = CampaignSettings(
        campaign_key="k", from_address="news@example.com",
        templates=TemplateSet(subject="Hi {{ name }}", text="Hello"),
        unsubscribe_mailto="unsubscribe@example.com",
    )
    one = PendingRecipient(1, "a@example.com", "a@example.com", "A", {})
    batch = pool.render(settings, 1, [one])
    assert batch is not None
    executor = pool._started()
    print(executor.submit(child_pid).result(), flush=True)
    sys.stdin.read()  # until killed
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_the_render_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT, encoding="utf-8")
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert child != parent.pid and _alive(child)

    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30  # a generous bound, not a speed claim
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    still_there = _alive(child)
    if still_there:
        os.kill(child, signal.SIGKILL)  # leave nothing behind, then fail
    assert not still_there, "the render child outlived its killed parent"
