"""The table every view lists its resources in: row keys are resource names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowDoesNotExist, RowKey


def literal(cell: object) -> object:
    """A str cell as itself: DataTable reads strings as markup, and these hold spec values,
    host output and errors (`[/x]` in a model path would vanish or raise)."""
    return escape(cell) if isinstance(cell, str) else cell


def row_matches(cells: Sequence[object], text: str) -> bool:
    """The `/` filter, for every view: does the row's plain text contain `text` (any case)?"""
    plain = " ".join(c.plain if isinstance(c, Text) else str(c) for c in cells)
    return text.lower() in plain.lower()


class ResourceTable(DataTable[object], inherit_bindings=False):
    """A row-cursor DataTable that leaves `enter` to the view, so the footer shows it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="table.up", tooltip="Previous row"),
        Binding("down,j", "cursor_down", "Down", show=False, id="table.down", tooltip="Next row"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up",
                tooltip="One page up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down",
                tooltip="One page down"),
        Binding("home", "scroll_top", "First", show=False, id="table.first", tooltip="First row"),
        Binding("end", "scroll_bottom", "Last", show=False, id="table.last", tooltip="Last row"),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def add_row(self, *cells: object, **kwargs: Any) -> RowKey:
        return super().add_row(*(literal(c) for c in cells), **kwargs)

    def update_cell(
        self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, **kwargs: Any
    ) -> None:
        super().update_cell(row_key, column_key, literal(value), **kwargs)

    def fill(self, rows: Iterable[tuple[str, Sequence[object], int]], filter_text: str) -> None:
        """Show these rows (key, cells, height) where they match the filter, keeping the
        cursor on the row it was on."""
        selected = self.selected_key
        self.clear()
        for key, cells, height in rows:
            if row_matches(cells, filter_text):
                self.add_row(*cells, key=key, height=height)
        if selected:
            self.select_key(selected)

    def update_row(self, key: str, cells: Sequence[object]) -> None:
        """Redraw one row in place (nothing when it is filtered out)."""
        if key not in self.rows:
            return
        for column, cell in zip(self.columns, cells, strict=False):
            self.update_cell(key, column, cell, update_width=True)  # type: ignore[arg-type]

    def row_height(self, key: str) -> int | None:
        """How many lines the row takes, or None when it is not shown."""
        row = self.rows.get(RowKey(key))
        return None if row is None else row.height

    @property
    def selected_key(self) -> str | None:
        """The row key under the cursor, or None for an empty table."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else str(row_key.value)

    def select_key(self, key: str) -> None:
        """Move the cursor to the row with this key, if it is shown."""
        try:
            self.move_cursor(row=self.get_row_index(key))
        except RowDoesNotExist:  # filtered out: nothing to select
            return
