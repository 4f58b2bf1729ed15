"""A table on Textual's line API, for fleet-sized panes.

``DataTable`` repaints the whole table on any change (about 50 ms and 38 KB to
the terminal for 1,000 rows, see DESIGN.md). This table draws only the lines
on screen, and ``set_rows`` refreshes only the rows whose content changed, so
one changed GPU costs one line on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.plugin import Severity
from console.sanitize import clean


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header and width in cells (0: take the remaining width)."""

    label: str
    width: int = 0
    align: str = "left"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. ``key`` identifies it across updates."""

    key: str
    cells: tuple[str | Text, ...]
    node: str | None = None
    """The node this row is about; enter on it opens the node card."""
    severity: Severity = Severity.OK
    data: tuple[tuple[str, str], ...] = field(default=())
    """Extra key/values for the pane (e.g. the target kind), never drawn."""


_SEVERITY_CLASS = {
    Severity.OK: "",
    Severity.UNKNOWN: "line-table--unknown",
    Severity.WARNING: "line-table--warning",
    Severity.CRITICAL: "line-table--critical",
}


class LineTable(ScrollView, can_focus=True):
    """A scrollable, keyboard-driven table that redraws only changed lines."""

    DEFAULT_CSS = """
    LineTable {
        height: 1fr;
        overflow-x: hidden;
    }
    LineTable > .line-table--header { text-style: bold; }
    LineTable > .line-table--cursor { text-style: reverse; }
    LineTable:blur > .line-table--cursor { text-style: none; }
    LineTable > .line-table--warning { color: $warning; }
    LineTable > .line-table--critical { color: $error; text-style: bold; }
    LineTable > .line-table--unknown { color: $text-muted; }
    """

    COMPONENT_CLASSES = {
        "line-table--header",
        "line-table--cursor",
        "line-table--warning",
        "line-table--critical",
        "line-table--unknown",
    }

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class RowSelected(Message):
        """The operator pressed enter on a row."""

        def __init__(self, table: LineTable, row: Row) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> LineTable:
            return self.table

    class RowHighlighted(Message):
        """The cursor moved to a row."""

        def __init__(self, table: LineTable, row: Row) -> None:
            super().__init__()
            self.table = table
            self.row = row

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        show_header: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.show_header = show_header
        self.rows: list[Row] = []
        self.cursor = 0
        self._cache: dict[tuple[int, bool, int], Strip] = {}
        self.lines_refreshed = 0
        """How many single lines ``set_rows`` refreshed (for tests and benchmarks)."""

    # ------------------------------------------------------------------ data

    @property
    def _header_lines(self) -> int:
        return 1 if self.show_header else 0

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Show these rows; only lines whose row changed are redrawn."""
        old = self.rows
        new = list(rows)
        current_key = old[self.cursor].key if 0 <= self.cursor < len(old) else None
        self.rows = new
        if len(new) != len(old):
            self._cache.clear()
            self.virtual_size = Size(self._content_width(), len(new) + self._header_lines)
            self.cursor = self._index_of(current_key)
            self.refresh()
            return
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a is not b and a != b:  # panes reuse unchanged rows: identity is the fast path
                self._cache.pop((i, True, self.size.width), None)
                self._cache.pop((i, False, self.size.width), None)
                self.refresh_line(i + self._header_lines)
                self.lines_refreshed += 1
        moved = self._index_of(current_key)
        if moved != self.cursor:
            self._move_cursor(moved)

    def _index_of(self, key: str | None) -> int:
        if key is not None:
            for i, row in enumerate(self.rows):
                if row.key == key:
                    return i
        return min(self.cursor, max(0, len(self.rows) - 1))

    @property
    def current_row(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _content_width(self) -> int:
        return sum(c.width or 10 for c in self.columns) + len(self.columns)

    # ------------------------------------------------------------------ drawing

    def _widths(self, total: int) -> list[int]:
        fixed = sum(c.width for c in self.columns) + max(0, len(self.columns) - 1)
        flex = [c for c in self.columns if c.width == 0]
        spare = max(0, total - fixed)
        each = spare // len(flex) if flex else 0
        return [c.width or max(each, 4) for c in self.columns]

    def _render_cells(self, cells: Sequence[str | Text], widths: Sequence[int]) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, (cell, width) in enumerate(zip(cells, widths, strict=False)):
            if isinstance(cell, Text):
                text = cell.copy()
                safe = clean(text.plain)
                if safe != text.plain:
                    # A styled cell may still carry remote text; its spans no longer
                    # line up once sequences are removed, so keep only the base style.
                    text = Text(safe, style=text.style)
            else:
                text = Text(clean(str(cell)))
            text.truncate(width, overflow="ellipsis")
            if self.columns[i].align == "right":
                text.pad_left(width - text.cell_len)
            else:
                text.pad_right(width - text.cell_len)
            line.append_text(text)
            if i < len(widths) - 1:
                line.append(" ")
        return line

    def _strip(self, text: Text, style: Style, width: int) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop_extend(0, width, style)
        return strip.apply_style(style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        widths = self._widths(width)
        if self.show_header and y == 0:
            header = self._render_cells([Text(c.label) for c in self.columns], widths)
            style = base + self.get_component_rich_style("line-table--header")
            return self._strip(header, style, width)
        index = y + self.scroll_offset.y - self._header_lines
        if not 0 <= index < len(self.rows):
            return Strip([Segment(" " * width, base)], width)
        is_cursor = index == self.cursor and self.has_focus
        key = (index, is_cursor, width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        row = self.rows[index]
        style = base
        sev_class = _SEVERITY_CLASS.get(row.severity, "")
        if sev_class:
            style += self.get_component_rich_style(sev_class)
        if is_cursor:
            style += self.get_component_rich_style("line-table--cursor")
        strip = self._strip(self._render_cells(row.cells, widths), style, width)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = strip
        return strip

    def on_resize(self) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows) + self._header_lines)

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()

    # ------------------------------------------------------------------ keys

    def _move_cursor(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        old = self.cursor
        self.cursor = index
        for i in (old, index):
            self._cache.pop((i, True, self.size.width), None)
            self._cache.pop((i, False, self.size.width), None)
            self.refresh_line(i + self._header_lines)
        visible = max(1, self.size.height - self._header_lines)
        top = self.scroll_offset.y
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)
        self.post_message(self.RowHighlighted(self, self.rows[index]))

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_cursor(self.cursor + direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        self._move_cursor(0 if where == 0 else len(self.rows) - 1)

    def action_select(self) -> None:
        row = self.current_row
        if row is not None:
            self.post_message(self.RowSelected(self, row))
