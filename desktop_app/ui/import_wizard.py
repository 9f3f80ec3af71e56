"""Import a CSV file into a subscriber list, in four steps a person can check.

1. the file (its detected encoding and delimiter), 2. the first rows and which column is
which, 3. a dry run: how many rows would be imported, skipped as duplicates or rejected, and
why, 4. the import itself, in one transaction, then what it did. With rejected rows nothing
is imported unless the person explicitly chooses to import the valid ones.

Reading and parsing a file (up to 200 MB) and the import run off the GUI thread through the
bridge; answers meant for a step the person has since left are dropped (``_generation``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.campaigns.csv_import import ColumnMapping, RejectedRow, parse_subscribers
from desktop_app.core.campaigns.csv_preview import (
    CsvPreview,
    delimiter_name,
    preview_csv,
    read_csv_file,
)
from desktop_app.core.storage.lists import ImportReport
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import MAX_IMPORT_BYTES, Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import one_line
from desktop_app.ui.provider_dialog import labelled
from desktop_app.ui.table_model import FlatTableModel

_Index = QModelIndex | QPersistentModelIndex
_NONE = "(none)"


def describe_report(report: ImportReport) -> str:
    """What an import did, in one line."""
    text = f"Imported {count_of(report.imported, 'subscriber')} into {report.list_name}"
    if report.duplicates:
        text += f"; {count_of(len(report.duplicates), 'duplicate')} skipped"
    if report.rejects:
        text += f"; {count_of(len(report.rejects), 'row')} rejected"
    return text


# -- the work done off the GUI thread ----------------------------------------------------------


def load_preview(path: Path) -> CsvPreview:
    """Read ``path`` and look at its start (the whole file decides the encoding)."""
    return preview_csv(read_csv_file(path, max_bytes=MAX_IMPORT_BYTES))


@dataclass(frozen=True, slots=True)
class DryRun:
    """What importing the file with a mapping would do; nothing is stored."""

    valid: int
    duplicates: tuple[RejectedRow, ...]
    rejects: tuple[RejectedRow, ...]


def dry_run(workspace: Workspace, list_name: str, path: Path, mapping: ColumnMapping) -> DryRun:
    """Parse the whole file as the import will, against the addresses already on the list."""
    existing = workspace.lists.keys(list_name)
    parsed = parse_subscribers(
        read_csv_file(path, max_bytes=MAX_IMPORT_BYTES), mapping=mapping, existing_keys=existing
    )
    # Only the counts and the rows to show cross back: not 100,000 parsed subscribers.
    return DryRun(len(parsed.subscribers), parsed.duplicates, parsed.rejects)


# -- models ----------------------------------------------------------------------------------


class PreviewModel(FlatTableModel):
    """The first rows of the file, under its header; columns left out are greyed."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._preview: CsvPreview | None = None
        self._roles: dict[int, str] = {}
        self._excluded: set[int] = set()

    def show_preview(self, preview: CsvPreview) -> None:
        self.beginResetModel()
        self._preview = preview
        self.columns = tuple(h or f"(column {i + 1})" for i, h in enumerate(preview.header))
        self._roles = {}
        self._excluded = set()
        self.endResetModel()

    def mark(self, roles: dict[int, str], excluded: set[int]) -> None:
        """Column index -> role ("email"...) shown in the header; ``excluded`` greyed."""
        self._roles, self._excluded = roles, excluded
        if self.columns:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self.columns) - 1)
            self.dataChanged.emit(
                self.index(0, 0), self.index(self.rowCount() - 1, len(self.columns) - 1)
            )

    def row_total(self) -> int:
        return len(self._preview.rows) if self._preview else 0

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or self._preview is None:
            return None
        if orientation == Qt.Orientation.Vertical:
            return f"line {self._preview.lines[section]}"
        title = self.columns[section]
        if section in self._roles:
            return f"{title}\n→ {self._roles[section]}"
        return f"{title}\n(left out)" if section in self._excluded else f"{title}\n→ field"

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._preview is None:
            return None
        cells = self._preview.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cells[index.column()] if index.column() < len(cells) else ""
        if role == Qt.ItemDataRole.ForegroundRole and index.column() in self._excluded:
            return QBrush(QPalette().color(QPalette.ColorRole.PlaceholderText))
        return None


class RejectsModel(FlatTableModel):
    """Rejected rows: where, what and why."""

    columns = ("Line", "Value", "Reason")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: tuple[RejectedRow, ...] = ()

    def replace(self, rows: tuple[RejectedRow, ...]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def row_total(self) -> int:
        return len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.line, row.value, row.reason)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() > 0:
            return (row.value, row.reason)[index.column() - 1]
        return None


def _table(accessible_name: str, model: FlatTableModel) -> QTableView:
    table = QTableView()
    table.setAccessibleName(accessible_name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setStretchLastSection(True)
    return table


# -- the steps -------------------------------------------------------------------------------


class FileStep(QWidget):
    """Step 1: which file, and how it reads (encoding, delimiter)."""

    def __init__(self, list_name: str) -> None:
        super().__init__()
        self.path_edit = labelled(QLineEdit(), "CSV file")
        self.path_edit.setPlaceholderText("A .csv file: one row per subscriber, a header first")
        self.browse_button = labelled(QPushButton("Browse…"), "Browse")
        self.details = QLabel("No file chosen yet.")
        self.details.setObjectName("file_details")
        self.details.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Import subscribers into the list <b>{list_name}</b> from:"))
        layout.addLayout(row)
        layout.addWidget(self.details)
        layout.addStretch(1)

    def show_preview(self, preview: CsvPreview) -> None:
        self.details.setText(
            f"Encoding: {preview.encoding} · Delimiter: {delimiter_name(preview.delimiter)} · "
            f"{count_of(len(preview.header), 'column')}"
        )


class MappingStep(QWidget):
    """Step 2: the first rows, and which column is the address, the name, the status.

    Every other column becomes a custom field unless its box is unticked.

    Signals:
        mapping_changed(): a role or a field box changed.
    """

    mapping_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._header: tuple[str, ...] = ()
        self.preview_model = PreviewModel(self)
        self.preview_table = _table("Preview of the first rows", self.preview_model)
        self.preview_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Interactive
        )
        self.preview_table.horizontalHeader().setStretchLastSection(False)
        self.hint = QLabel()
        self.hint.setObjectName("mapping_hint")
        self.hint.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("mapping_problem")
        self.problem_label.setStyleSheet("font-weight: bold;")
        self.email_combo = labelled(QComboBox(), "Email column")
        self.name_combo = labelled(QComboBox(), "Name column")
        self.status_combo = labelled(QComboBox(), "Status column")
        self.fields_list = labelled(QListWidget(), "Custom fields")
        self.fields_list.setMaximumHeight(90)
        for combo in (self.email_combo, self.name_combo, self.status_combo):
            combo.currentIndexChanged.connect(self._on_role_changed)
        self.fields_list.itemChanged.connect(self._on_field_toggled)

        form = QFormLayout()
        for text, field in (
            ("&Email column:", self.email_combo),
            ("&Name column:", self.name_combo),
            ("&Status column (optional):", self.status_combo),
            ("Custom &fields:", self.fields_list),
        ):
            label = QLabel(text)
            label.setBuddy(field)
            form.addRow(label, field)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The first rows of the file:"))
        layout.addWidget(self.preview_table, 2)
        layout.addWidget(self.hint)
        layout.addLayout(form)
        layout.addWidget(self.problem_label)

    def show_preview(self, preview: CsvPreview) -> None:
        self._header = preview.header
        self.preview_model.show_preview(preview)
        self.preview_table.resizeColumnsToContents()
        for column in range(len(preview.header)):
            width = min(self.preview_table.columnWidth(column), 260)
            self.preview_table.setColumnWidth(column, width)
        shown = [h or f"(column {i + 1})" for i, h in enumerate(preview.header)]
        suggested = preview.suggested
        for combo, optional, chosen in (
            (self.email_combo, False, suggested.email if suggested else None),
            (self.name_combo, True, suggested.name if suggested else None),
            (self.status_combo, True, suggested.status if suggested else None),
        ):
            combo.blockSignals(True)
            combo.clear()
            if optional:
                combo.addItem(_NONE, None)
            for title, header in zip(shown, preview.header, strict=True):
                # A column without a header name cannot be named in a mapping.
                if header:
                    combo.addItem(title, header)
            combo.setCurrentIndex(combo.findData(chosen) if chosen else (0 if optional else -1))
            combo.blockSignals(False)
        if suggested is None:
            self.email_combo.setPlaceholderText("Choose the column of addresses")
            self.hint.setText(
                "No column is named like an address column: choose which one holds the "
                "email addresses."
            )
        else:
            self.hint.setText("Columns were recognized by their names; change them if needed.")
        self._rebuild_fields(previous={})
        self.mapping_changed.emit()

    def _role_columns(self) -> dict[str, str]:
        chosen = {
            "email": self.email_combo.currentData(),
            "name": self.name_combo.currentData(),
            "status": self.status_combo.currentData(),
        }
        return {role: header for role, header in chosen.items() if header}

    def _rebuild_fields(self, previous: dict[str, bool]) -> None:
        used = set(self._role_columns().values())
        self.fields_list.blockSignals(True)
        self.fields_list.clear()
        for header in self._header:
            if not header or header in used:
                continue
            item = QListWidgetItem(header)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if previous.get(header, True) else Qt.CheckState.Unchecked
            )
            self.fields_list.addItem(item)
        self.fields_list.blockSignals(False)
        self._mark_preview()

    def _field_states(self) -> dict[str, bool]:
        items = (self.fields_list.item(row) for row in range(self.fields_list.count()))
        return {item.text(): item.checkState() == Qt.CheckState.Checked for item in items}

    def _mark_preview(self) -> None:
        roles = {self._header.index(h): role for role, h in self._role_columns().items()}
        left_out = {h for h, included in self._field_states().items() if not included}
        excluded = {i for i, h in enumerate(self._header) if h in left_out}
        self.preview_model.mark(roles, excluded)

    @Slot()
    def _on_role_changed(self, *_args: Any) -> None:
        self._rebuild_fields(previous=self._field_states())
        self.mapping_changed.emit()

    @Slot(QListWidgetItem)
    def _on_field_toggled(self, _item: QListWidgetItem) -> None:
        self._mark_preview()
        self.mapping_changed.emit()

    def set_field_included(self, header: str, included: bool) -> None:
        """Tick or untick the custom field box of column ``header``."""
        for item in self.fields_list.findItems(header, Qt.MatchFlag.MatchExactly):
            item.setCheckState(Qt.CheckState.Checked if included else Qt.CheckState.Unchecked)

    def problem(self) -> str:
        """Why the mapping cannot be used yet ("" when it can)."""
        roles = self._role_columns()
        if "email" not in roles:
            return "Choose the column that holds the email addresses."
        if len(set(roles.values())) < len(roles):
            return "One column cannot have two roles."
        return ""

    def mapping(self) -> ColumnMapping:
        roles = self._role_columns()
        states = self._field_states()
        # All boxes ticked: the import's own rule ("every other column, under its header"),
        # which also keeps columns that have no header name.
        fields = (
            None if all(states.values()) else {h: h for h, included in states.items() if included}
        )
        return ColumnMapping(
            email=roles["email"], name=roles.get("name"), status=roles.get("status"), fields=fields
        )


class CheckStep(QWidget):
    """Step 3: what the import would do, and the rejected rows with their line numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.summary = QLabel()
        self.summary.setObjectName("dry_run_summary")
        self.summary.setWordWrap(True)
        self.rejects_model = RejectsModel(self)
        self.rejects_table = _table("Rejected rows", self.rejects_model)
        self.rejects_table.setColumnWidth(0, 60)
        self.rejects_table.setColumnWidth(1, 260)
        self.rejects_title = QLabel("Rejected rows (not imported):")
        self.choice = QLabel()
        self.choice.setObjectName("reject_choice")
        self.choice.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.rejects_title)
        layout.addWidget(self.rejects_table, 1)
        layout.addWidget(self.choice)

    def show_result(self, result: DryRun, list_name: str) -> None:
        self.summary.setText(
            f"Nothing has been imported yet. Into <b>{list_name}</b>:<br>"
            f"{count_of(result.valid, 'row')} to import · "
            f"{count_of(len(result.duplicates), 'duplicate')} (skipped) · "
            f"{count_of(len(result.rejects), 'rejected row')}"
        )
        self.rejects_model.replace(result.rejects)
        has_rejects = bool(result.rejects)
        self.rejects_title.setVisible(has_rejects)
        self.rejects_table.setVisible(has_rejects)
        if not result.valid:
            self.choice.setText("There is no valid row to import: fix the file and try again.")
        elif has_rejects:
            self.choice.setText(
                f"Import the {count_of(result.valid, 'valid row')} and leave the rejected ones "
                "out, or cancel, fix the file and try again. Nothing is imported otherwise."
            )
        else:
            self.choice.setText("Every row can be imported.")


class DoneStep(QWidget):
    """Step 4: the import running, then what it did."""

    def __init__(self) -> None:
        super().__init__()
        self.summary = QLabel()
        self.summary.setObjectName("import_summary")
        self.summary.setWordWrap(True)
        # No percentage to show: the import is one transaction, done when it commits.
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.progress)
        layout.addStretch(1)


# -- the wizard ------------------------------------------------------------------------------


class ImportWizard(QDialog):
    """The four steps of a CSV import into one list.

    Signals:
        imported(ImportReport): the import was committed (the page reloads the counts).
    """

    imported = Signal(object)

    FILE, MAPPING, CHECK, DONE = range(4)
    _TITLES = (
        "Choose the file",
        "Check the columns",
        "Check the rows",
        "Import",
    )

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        list_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self.list_name = list_name
        self.path: Path | None = None
        self.preview: CsvPreview | None = None
        self.checked: DryRun | None = None
        self.report: ImportReport | None = None
        self.importing = False
        self._busy = False
        # Bumped whenever the answer to a running request stops being wanted.
        self._generation = 0
        self.setWindowTitle(f"Import CSV into {list_name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(760, 560)

        self.file_step = FileStep(list_name)
        self.mapping_step = MappingStep()
        self.check_step = CheckStep()
        self.done_step = DoneStep()
        self.steps = QStackedWidget()
        for step in (self.file_step, self.mapping_step, self.check_step, self.done_step):
            self.steps.addWidget(step)
        self.file_step.browse_button.clicked.connect(self._on_browse_clicked)
        self.file_step.path_edit.editingFinished.connect(self._on_path_edited)
        self.mapping_step.mapping_changed.connect(self._update_buttons)

        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        # One line for what is going on, or for what went wrong.
        self.message = QLabel(" ")
        self.message.setObjectName("wizard_message")
        self.message.setAccessibleName("Import message")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.back_button = labelled(QPushButton("< Back"), "Back")
        self.next_button = labelled(QPushButton("Next >"), "Next")
        self.cancel_button = labelled(QPushButton("Cancel"), "Cancel")
        self.next_button.setDefault(True)
        self.back_button.clicked.connect(self.go_back)
        self.next_button.clicked.connect(self.go_next)
        self.cancel_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.steps, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._show_step(self.FILE)

    # -- navigation ------------------------------------------------------------------------

    @property
    def step(self) -> int:
        return self.steps.currentIndex()

    def _show_step(self, step: int) -> None:
        self.steps.setCurrentIndex(step)
        self.title.setText(f"Step {step + 1} of 4 — {self._TITLES[step]}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        step = self.step
        self.back_button.setEnabled(step in (self.MAPPING, self.CHECK) and not self._busy)
        self.back_button.setVisible(step != self.DONE or self.report is None)
        self.cancel_button.setEnabled(not self.importing)
        self.cancel_button.setVisible(self.report is None)
        if step == self.FILE:
            self.next_button.setText("Next >")
            self.next_button.setEnabled(self.preview is not None and not self._busy)
        elif step == self.MAPPING:
            self.next_button.setText("Next >")
            problem = self.mapping_step.problem()
            self.mapping_step.problem_label.setText(problem)
            self.next_button.setEnabled(not problem and not self._busy)
        elif step == self.CHECK:
            result = self.checked
            valid = result.valid if result else 0
            if result is not None and result.rejects:
                self.next_button.setText(f"Import the {count_of(valid, 'valid row')}")
            else:
                self.next_button.setText(f"Import {count_of(valid, 'row')}")
            self.next_button.setEnabled(valid > 0 and not self._busy)
        else:
            self.next_button.setText("Close")
            self.next_button.setEnabled(self.report is not None)
            self.back_button.setEnabled(self.report is None and not self.importing)

    @Slot()
    def go_next(self) -> None:
        step = self.step
        if step == self.FILE:
            self._show_step(self.MAPPING)
        elif step == self.MAPPING:
            self._start_dry_run()
        elif step == self.CHECK:
            self._start_import()
        else:
            self.accept()

    @Slot()
    def go_back(self) -> None:
        if self._busy and not self.importing:
            self._generation += 1  # the person moved on: drop the answer
            self._busy = False
        target = {self.MAPPING: self.FILE, self.CHECK: self.MAPPING, self.DONE: self.CHECK}
        if self.step in target:
            self._note("")
            self._show_step(target[self.step])

    def reject(self) -> None:
        # An import cannot be stopped halfway (one transaction): wait for its outcome.
        if self.importing:
            return
        super().reject()

    def done(self, result: int) -> None:
        self._generation += 1  # answers still on their way are for nobody now
        super().done(result)

    # -- step 1: the file ------------------------------------------------------------------

    @Slot()
    def _on_browse_clicked(self) -> None:
        start = str(self.path.parent) if self.path else ""
        path, _filter = QFileDialog.getOpenFileName(
            self, "Choose a CSV file", start, "CSV files (*.csv *.txt);;All files (*)"
        )
        if path:
            self.choose_file(Path(path))

    @Slot()
    def _on_path_edited(self) -> None:
        text = self.file_step.path_edit.text().strip()
        if text and Path(text) != self.path:
            self.choose_file(Path(text))

    def choose_file(self, path: Path) -> None:
        """Read ``path`` in the background and show how it reads."""
        self.path = path
        self.preview = None
        self.checked = None
        self.file_step.path_edit.setText(str(path))
        self.file_step.details.setText("Reading the file…")
        self._note("")
        self._run(
            functools.partial(load_preview, path),
            on_success=self._on_preview_loaded,
            on_error=self._on_preview_failed,
        )

    def _on_preview_loaded(self, preview: CsvPreview) -> None:
        self.preview = preview
        self.file_step.show_preview(preview)
        self.mapping_step.show_preview(preview)
        self._update_buttons()

    def _on_preview_failed(self, error: BaseException) -> None:
        self.file_step.details.setText("This file cannot be imported (why: below); choose another.")
        self._show_error(error)

    # -- step 3: the dry run ---------------------------------------------------------------

    def _start_dry_run(self) -> None:
        if self.path is None or self.mapping_step.problem():
            return
        self.checked = None
        self._note("Checking every row…")
        self._run(
            functools.partial(
                dry_run, self._workspace, self.list_name, self.path, self.mapping_step.mapping()
            ),
            on_success=self._on_dry_run_finished,
            on_error=self._show_error,
        )

    def _on_dry_run_finished(self, result: DryRun) -> None:
        self.checked = result
        self._note("")
        self.check_step.show_result(result, self.list_name)
        self._show_step(self.CHECK)

    # -- step 4: the import ----------------------------------------------------------------

    def _start_import(self) -> None:
        result = self.checked
        if self.path is None or result is None or not result.valid:
            return
        self.importing = True
        self.report = None
        self.done_step.summary.setText(f"Importing {count_of(result.valid, 'row')}…")
        self.done_step.progress.setVisible(True)
        self._show_step(self.DONE)
        # Rejects are accepted only because the person just chose "Import the N valid rows";
        # if the file changed since the dry run and has new rejects, nothing is imported.
        self._run(
            functools.partial(
                self._workspace.import_list,
                self.list_name,
                self.path,
                accept_valid=bool(result.rejects),
                mapping=self.mapping_step.mapping(),
            ),
            on_success=self._on_imported,
            on_error=self._on_import_failed,
        )

    def _on_imported(self, report: ImportReport) -> None:
        self.importing = False
        self.report = report
        self.done_step.progress.setVisible(False)
        self.done_step.summary.setText(describe_report(report) + ".")
        self._update_buttons()
        self.imported.emit(report)

    def _on_import_failed(self, error: BaseException) -> None:
        self.importing = False
        self.done_step.progress.setVisible(False)
        self.done_step.summary.setText("Nothing was imported.")
        self._show_error(error)

    # -- background requests ---------------------------------------------------------------

    def _run(self, function: Any, *, on_success: Any, on_error: Any) -> None:
        self._generation += 1
        generation = self._generation
        self._busy = True
        self._update_buttons()

        def answered(callback: Any) -> Any:
            def deliver(value: Any) -> None:
                if generation != self._generation:
                    return  # the wizard closed or the person moved on
                self._busy = False
                callback(value)
                self._update_buttons()

            return deliver

        self._bridge.call(function, on_success=answered(on_success), on_error=answered(on_error))

    def _note(self, text: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(text or " ")  # a space keeps the line's height

    def _show_error(self, error: BaseException) -> None:
        if is_shutdown_error(error):
            return
        self.message.setStyleSheet("font-weight: bold;")
        self.message.setText(one_line(error))
