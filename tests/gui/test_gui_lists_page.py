"""The Lists page and its CSV import wizard, over a real workspace, loop thread and files."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QDialog, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.ui import lists_page as lists_page_module
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.import_wizard import ImportWizard
from desktop_app.ui.lists_page import PAGE_SIZE, ListsPage, SubscribersModel
from tests.support.qt_helpers import settle

WAIT_MS = 10_000
SUPPRESSED, TOTAL = 5, 6  # columns of the lists table


@pytest.fixture
def page(qtbot: QtBot, workspace: Workspace) -> Iterator[ListsPage]:
    """The page alone over the real workspace, with a running loop thread and bridge."""
    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    shown = ListsPage(workspace, bridge)
    shown.resize(900, 760)
    qtbot.addWidget(shown)
    with qtbot.waitExposed(shown):
        shown.show()
    settle(qtbot, bridge)
    yield shown
    runtime.stop()
    # Answers cut short by the shutdown arrive as queued signals: deliver them while the
    # widgets exist, then delete the QObjects here, on the GUI thread (see conftest.py).
    QApplication.processEvents()
    for owned in (shown, bridge):
        owned.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def write_csv(directory: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_bytes(text.encode(encoding))
    return path


def table_column(model: Any, column: int) -> list[Any]:
    return [model.index(row, column).data() for row in range(model.rowCount())]


def wait_for_lists(qtbot: QtBot, page: ListsPage, names: list[str]) -> None:
    qtbot.waitUntil(lambda: table_column(page.lists_model, 0) == names, timeout=WAIT_MS)


def select_list(qtbot: QtBot, page: ListsPage, name: str) -> None:
    page.lists_table.selectRow(page.lists_model.row_of(name))
    assert page.selected_name() == name
    qtbot.waitUntil(lambda: page.subscribers_model.list_name == name, timeout=WAIT_MS)


def click(qtbot: QtBot, button: QWidget) -> None:
    assert button.isEnabled(), f"{button.objectName()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_wizard(qtbot: QtBot, page: ListsPage, path: Path) -> ImportWizard:
    """Import CSV… on the selected list, then the file chosen and read."""
    click(qtbot, page.import_button)
    wizard = page.import_wizard
    assert wizard is not None and wizard.isVisible()
    wizard.choose_file(path)
    qtbot.waitUntil(lambda: wizard.preview is not None or wizard.message.text().strip() != "")
    return wizard


def run_dry_run(qtbot: QtBot, wizard: ImportWizard) -> None:
    assert wizard.step == wizard.MAPPING
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: wizard.step == wizard.CHECK, timeout=WAIT_MS)


# -- the subscribers model on its own ----------------------------------------------------


def test_subscribers_model_reads_a_page_at_a_time_and_passes_the_model_tester(
    workspace: Workspace, tmp_path: Path, qapp: Any, qtmodeltester: Any
) -> None:
    rows = "".join(f"r{n:04d}@example.com,Reader {n},{n % 3}\n" for n in range(1200))
    workspace.create_list("big")
    workspace.import_list("big", write_csv(tmp_path, "big.csv", "email,name,group\n" + rows))
    model = SubscribersModel(workspace)  # no runner: reads at once, on this thread
    model.show_list("big")
    assert model.rowCount() == PAGE_SIZE == 500
    assert model.columns == ("Email", "Name", "Status", "group")
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 1000
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 1200
    assert not model.canFetchMore(QModelIndex())
    assert table_column(model, 0)[-1] == "r1199@example.com"
    assert model.index(1199, 3).data() == str(1199 % 3)
    # The tester stays attached: switching lists (resets, new field columns) must keep the
    # model consistent too.
    qtmodeltester.check(model)
    model.show_list(None)
    assert model.rowCount() == 0
    assert model.columnCount() == 3
    model.show_list("big")  # the tester itself fetches more pages after a reset
    assert model.index(0, 0).data() == "r0000@example.com"
    assert model.columnCount() == 4


# -- lists -------------------------------------------------------------------------------


def test_new_list_button_creates_a_list_with_zero_counts(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, modal: Any
) -> None:
    def name_it(dialog: QDialog) -> None:
        dialog.findChild(QLineEdit).setText("  Newsletter ")
        modal.click(dialog, "OK")

    modal.drive(name_it)
    click(qtbot, page.new_button)
    modal.check()
    wait_for_lists(qtbot, page, ["Newsletter"])
    assert [workspace_list.name for workspace_list in workspace.subscriber_lists()] == [
        "Newsletter"
    ]
    assert table_column(page.lists_model, TOTAL) == ["0"]
    assert page.selected_name() == "Newsletter"
    assert page.status.text() == "Created list Newsletter"
    # A second list of the same name: one line, the page carries on.
    page.create_list("Newsletter")
    qtbot.waitUntil(lambda: "already exists" in page.status.text(), timeout=WAIT_MS)
    assert page.status.text().count("\n") == 0
    wait_for_lists(qtbot, page, ["Newsletter"])


def test_rename_and_delete_ask_first(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, modal: Any, tmp_path: Path
) -> None:
    workspace.create_list("old")
    workspace.import_list("old", write_csv(tmp_path, "a.csv", "email\nann@example.com\n"))
    workspace.suppress("ann@example.com")
    page.reload()
    wait_for_lists(qtbot, page, ["old"])
    select_list(qtbot, page, "old")

    def rename(dialog: QDialog) -> None:
        dialog.findChild(QLineEdit).setText("renamed")
        modal.click(dialog, "OK")

    modal.drive(rename)
    click(qtbot, page.rename_button)
    modal.check()
    wait_for_lists(qtbot, page, ["renamed"])
    assert page.selected_name() == "renamed"

    modal.drive(lambda dialog: modal.click(dialog, "No"))
    click(qtbot, page.delete_button)
    modal.check()
    settle(qtbot, page._bridge)
    assert [item.name for item in workspace.subscriber_lists()] == ["renamed"]

    modal.drive(lambda dialog: modal.click(dialog, "Yes"))
    click(qtbot, page.delete_button)
    modal.check()
    wait_for_lists(qtbot, page, [])
    assert workspace.subscriber_lists() == []
    assert page.subscribers_model.list_name is None
    assert page.subscribers_model.rowCount() == 0
    assert not page.delete_button.isEnabled()
    # The suppression list is global: deleting a list leaves it alone.
    assert [s.email_key for s in workspace.suppressions()] == ["ann@example.com"]


def test_export_writes_the_selected_list(
    qtbot: QtBot,
    page: ListsPage,
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace.create_list("clients")
    source = "email,name,city\nann@example.com,Ann,Oslo\nbob@example.org,Bob,Rome\n"
    workspace.import_list("clients", write_csv(tmp_path, "in.csv", source))
    page.reload()
    wait_for_lists(qtbot, page, ["clients"])
    select_list(qtbot, page, "clients")
    target = tmp_path / "out" / "clients.csv"
    target.parent.mkdir()
    asked: list[str] = []

    def save_as(_parent: Any, title: str, *_args: Any) -> tuple[str, str]:
        asked.append(title)
        return str(target), ""

    monkeypatch.setattr(lists_page_module.QFileDialog, "getSaveFileName", save_as)
    click(qtbot, page.export_button)
    qtbot.waitUntil(lambda: page.status.text().startswith("Exported"), timeout=WAIT_MS)
    assert asked == ["Export clients"]
    assert page.status.text() == f"Exported 2 subscribers to {target}"
    with target.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["email", "name", "status", "city"],
            ["ann@example.com", "Ann", "active", "Oslo"],
            ["bob@example.org", "Bob", "active", "Rome"],
        ]


def test_export_escapes_formulas_unless_unchecked(
    qtbot: QtBot,
    page: ListsPage,
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace.create_list("clients")
    source = 'email,name\nann@example.com,"=HYPERLINK(""http://x"")"\nbob@example.org,-2+3\n'
    workspace.import_list("clients", write_csv(tmp_path, "in.csv", source))
    page.reload()
    wait_for_lists(qtbot, page, ["clients"])
    select_list(qtbot, page, "clients")
    target = tmp_path / "clients.csv"
    monkeypatch.setattr(
        lists_page_module.QFileDialog, "getSaveFileName", lambda *_args: (str(target), "")
    )

    def exported_names() -> list[str]:
        click(qtbot, page.export_button)
        qtbot.waitUntil(lambda: page.status.text().startswith("Exported"), timeout=WAIT_MS)
        with target.open(encoding="utf-8", newline="") as handle:
            return [row[1] for row in csv.reader(handle)][1:]

    assert page.protect_check.isChecked()
    assert exported_names() == ['\'=HYPERLINK("http://x")', "'-2+3"]
    page.protect_check.setChecked(False)
    assert exported_names() == ['=HYPERLINK("http://x")', "-2+3"]


# -- the import wizard -------------------------------------------------------------------


def test_a_rejected_row_is_shown_by_line_and_nothing_is_imported_until_accepted(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("news")
    page.reload()
    wait_for_lists(qtbot, page, ["news"])
    select_list(qtbot, page, "news")
    path = write_csv(
        tmp_path,
        "news.csv",
        "email,name\n"
        "ann@example.com,Ann\n"
        "not-an-address,Broken\n"
        "bob@example.org,Bob\n"
        "ann@example.com,Ann again\n"
        "cy@example.net,Cy\n",
    )
    wizard = open_wizard(qtbot, page, path)
    assert wizard.file_step.details.text() == ("Encoding: utf-8 · Delimiter: comma · 2 columns")
    click(qtbot, wizard.next_button)
    assert wizard.mapping_step.email_combo.currentData() == "email"
    assert wizard.mapping_step.name_combo.currentData() == "name"
    assert wizard.mapping_step.preview_model.rowCount() == 5
    run_dry_run(qtbot, wizard)

    rejects = wizard.check_step.rejects_model
    assert rejects.rowCount() == 1
    assert [rejects.index(0, c).data() for c in range(2)] == [3, "not-an-address"]
    assert "3 rows to import" in wizard.check_step.summary.text()
    assert "1 duplicate" in wizard.check_step.summary.text()
    assert wizard.next_button.text() == "Import the 3 valid rows"
    assert workspace.get_list("news").total == 0, "a dry run stores nothing"

    # Back and forth keeps nothing half-done either.
    click(qtbot, wizard.back_button)
    assert wizard.step == wizard.MAPPING
    run_dry_run(qtbot, wizard)
    assert workspace.get_list("news").total == 0

    click(qtbot, wizard.next_button)  # the explicit choice
    qtbot.waitUntil(lambda: wizard.report is not None, timeout=WAIT_MS)
    assert wizard.report is not None
    assert wizard.report.imported == 3
    assert [r.line for r in wizard.report.rejects] == [3]
    assert wizard.done_step.summary.text() == (
        "Imported 3 subscribers into news; 1 duplicate skipped; 1 row rejected."
    )
    assert sorted(s.email for s in workspace.lists.iter_subscribers("news")) == [
        "ann@example.com",
        "bob@example.org",
        "cy@example.net",
    ]
    click(qtbot, wizard.next_button)  # Close
    qtbot.waitUntil(lambda: page.import_wizard is None)
    qtbot.waitUntil(lambda: table_column(page.lists_model, TOTAL) == ["3"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.subscribers_model.rowCount() == 3, timeout=WAIT_MS)
    assert table_column(page.subscribers_model, 1) == ["Ann", "Bob", "Cy"]
    assert page.status.text().startswith("Imported 3 subscribers into news")


def test_cancelling_at_the_rejects_imports_nothing(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("news")
    page.reload()
    wait_for_lists(qtbot, page, ["news"])
    select_list(qtbot, page, "news")
    path = write_csv(tmp_path, "bad.csv", "email\nann@example.com\nwrong@\n")
    wizard = open_wizard(qtbot, page, path)
    click(qtbot, wizard.next_button)
    run_dry_run(qtbot, wizard)
    assert wizard.check_step.rejects_model.index(0, 0).data() == 3
    click(qtbot, wizard.cancel_button)
    qtbot.waitUntil(lambda: page.import_wizard is None)
    settle(qtbot, page._bridge)
    assert workspace.get_list("news").total == 0


def test_a_non_standard_header_is_mapped_by_hand(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("clients")
    page.reload()
    wait_for_lists(qtbot, page, ["clients"])
    select_list(qtbot, page, "clients")
    path = write_csv(
        tmp_path,
        "kunden.csv",
        "Wer;Adresse;Stadt;Notiz\nZoë;zoe@example.com;Zürich;VIP\nMax;max@example.de;Köln;\n",
        encoding="cp1252",
    )
    wizard = open_wizard(qtbot, page, path)
    assert wizard.file_step.details.text() == (
        "Encoding: cp1252 · Delimiter: semicolon · 4 columns"
    )
    click(qtbot, wizard.next_button)
    mapping = wizard.mapping_step
    assert mapping.email_combo.currentIndex() == -1
    assert not wizard.next_button.isEnabled(), "no email column chosen yet"
    assert mapping.problem_label.text() == "Choose the column that holds the email addresses."

    mapping.email_combo.setCurrentIndex(mapping.email_combo.findData("Adresse"))
    mapping.name_combo.setCurrentIndex(mapping.name_combo.findData("Wer"))
    fields = [mapping.fields_list.item(r).text() for r in range(mapping.fields_list.count())]
    assert fields == ["Stadt", "Notiz"]
    mapping.set_field_included("Notiz", False)
    assert mapping.preview_model.headerData(1, Qt.Orientation.Horizontal) == "Adresse\n→ email"
    assert mapping.preview_model.headerData(3, Qt.Orientation.Horizontal).endswith("(left out)")
    assert wizard.next_button.isEnabled()

    run_dry_run(qtbot, wizard)
    assert wizard.next_button.text() == "Import 2 rows"
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: wizard.report is not None, timeout=WAIT_MS)
    stored = {s.email: (s.name, s.fields) for s in workspace.lists.iter_subscribers("clients")}
    assert stored == {
        "zoe@example.com": ("Zoë", {"Stadt": "Zürich"}),
        "max@example.de": ("Max", {"Stadt": "Köln"}),
    }
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: page.subscribers_model.rowCount() == 2, timeout=WAIT_MS)
    assert page.subscribers_model.columns == ("Email", "Name", "Status", "Stadt")


def test_an_e_mail_address_header_is_recognized(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("l")
    page.reload()
    wait_for_lists(qtbot, page, ["l"])
    select_list(qtbot, page, "l")
    path = write_csv(
        tmp_path, "x.csv", "Full Name\tE-mail address\tStatus\nAnn\tann@example.com\tbounced\n"
    )
    wizard = open_wizard(qtbot, page, path)
    assert "Delimiter: tab" in wizard.file_step.details.text()
    click(qtbot, wizard.next_button)
    mapping = wizard.mapping_step
    assert mapping.email_combo.currentData() == "E-mail address"
    assert mapping.name_combo.currentData() == "Full Name"
    assert mapping.status_combo.currentData() == "Status"
    assert mapping.fields_list.count() == 0
    run_dry_run(qtbot, wizard)
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: wizard.report is not None, timeout=WAIT_MS)
    assert workspace.get_list("l").counts["bounced"] == 1


def test_a_binary_file_gives_one_line_and_the_page_keeps_working(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("news")
    page.reload()
    wait_for_lists(qtbot, page, ["news"])
    select_list(qtbot, page, "news")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    wizard = open_wizard(qtbot, page, binary)
    message = wizard.message.text()
    assert "is not text" in message and message[0] == "T"
    assert "\n" not in message
    assert wizard.file_step.details.text().startswith("This file cannot be imported")
    assert not wizard.next_button.isEnabled()

    # A missing file: the same kind of answer.
    wizard.choose_file(tmp_path / "missing.csv")
    qtbot.waitUntil(lambda: "Cannot read" in wizard.message.text(), timeout=WAIT_MS)

    # The same wizard, a good file: all is well again.
    wizard.choose_file(write_csv(tmp_path, "ok.csv", "email\nann@example.com\n"))
    qtbot.waitUntil(lambda: wizard.preview is not None, timeout=WAIT_MS)
    assert wizard.message.text().strip() == ""
    click(qtbot, wizard.next_button)
    run_dry_run(qtbot, wizard)
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: wizard.report is not None, timeout=WAIT_MS)
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: table_column(page.lists_model, TOTAL) == ["1"], timeout=WAIT_MS)

    page.create_list("second")
    wait_for_lists(qtbot, page, ["news", "second"])


# -- the suppression list ----------------------------------------------------------------


def test_suppression_add_and_remove(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("news")
    workspace.import_list("news", write_csv(tmp_path, "n.csv", "email\nann@example.com\n"))
    page.reload()
    wait_for_lists(qtbot, page, ["news"])

    qtbot.keyClicks(page.suppress_input, "not an address")
    click(qtbot, page.suppress_button)
    qtbot.waitUntil(lambda: page.status.text().startswith("Error:"), timeout=WAIT_MS)
    assert "is not an email address" in page.status.text()
    assert page.status.text().startswith("Error: ")
    assert page.suppress_input.text() == "not an address", "kept to be corrected"

    page.suppress_input.clear()
    qtbot.keyClicks(page.suppress_input, " Ann@Example.com ")
    qtbot.keyClick(page.suppress_input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.suppressions_model.rowCount() == 1, timeout=WAIT_MS)
    assert table_column(page.suppressions_model, 0) == ["ann@example.com"]
    assert table_column(page.suppressions_model, 1) == ["manual"]
    assert page.suppress_input.text() == ""
    assert workspace.is_suppressed("ann@example.com")
    # The list counts it as suppressed (never sent to).
    qtbot.waitUntil(lambda: table_column(page.lists_model, SUPPRESSED) == ["1"], timeout=WAIT_MS)

    assert not page.unsuppress_button.isEnabled()
    page.suppressions_table.selectRow(0)
    click(qtbot, page.unsuppress_button)
    qtbot.waitUntil(lambda: page.suppressions_model.rowCount() == 0, timeout=WAIT_MS)
    assert workspace.suppressions() == []
    assert page.status.text() == "ann@example.com removed from the suppression list"
    qtbot.waitUntil(lambda: table_column(page.lists_model, SUPPRESSED) == ["0"], timeout=WAIT_MS)


def test_a_file_changed_after_the_dry_run_imports_nothing(
    qtbot: QtBot, page: ListsPage, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.create_list("news")
    page.reload()
    wait_for_lists(qtbot, page, ["news"])
    select_list(qtbot, page, "news")
    path = write_csv(tmp_path, "n.csv", "email\nann@example.com\nbob@example.com\n")
    wizard = open_wizard(qtbot, page, path)
    click(qtbot, wizard.next_button)
    run_dry_run(qtbot, wizard)
    assert wizard.next_button.text() == "Import 2 rows"
    # Someone edits the file between the check and the import: the person accepted no
    # rejects, so the import refuses the file as a whole.
    write_csv(tmp_path, "n.csv", "email\nann@example.com\nbroken\nbob@example.com\n")
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: not wizard.importing, timeout=WAIT_MS)
    assert wizard.report is None
    assert wizard.done_step.summary.text() == "Nothing was imported."
    assert wizard.message.text().startswith("1 row rejected (first: line 3")
    assert workspace.get_list("news").total == 0
    assert wizard.back_button.isEnabled() and wizard.cancel_button.isEnabled()


def test_a_subscribers_read_that_fails_is_reported_in_one_line(
    qtbot: QtBot, page: ListsPage
) -> None:
    with qtbot.waitSignal(page.subscribers_model.read_failed, timeout=WAIT_MS):
        page.subscribers_model.show_list("a list that is not there")
    assert page.status.text().startswith("Error: could not read the subscribers:")
    assert "\n" not in page.status.text()
    assert page.subscribers_model.rowCount() == 0
