"""The table every view lists its resources in: row keys are resource names."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowDoesNotExist, RowKey


def literal(cell: object) -> object:
    """A str cell as itself: DataTable reads strings as markup, and these hold spec values,
    host output and errors (`[/x]` in a model path would vanish or raise)."""
    return escape(cell) if isinstance(cell, str) else cell


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
