"""LineTable in a tiny app: partial refreshes, cursor keys, RowSelected, severity, sanitising."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip

from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row

ROWS = 1000


def make_rows(n: int = ROWS) -> list[Row]:
    return [Row(f"n{i:04d}", (f"n{i:04d}", "ok"), node=f"n{i:04d}") for i in range(n)]


class TableApp(App[None]):
    """One LineTable, filled on mount; records the rows enter selected."""

    def __init__(self, rows: list[Row]) -> None:
        super().__init__()
        self.initial = rows
        self.selected: list[Row] = []

    def compose(self) -> ComposeResult:
        yield LineTable([Column("Node", 10), Column("State")], id="table")

    def on_mount(self) -> None:
        table = self.query_one(LineTable)
        table.set_rows(self.initial)
        table.focus()

    def on_line_table_row_selected(self, message: LineTable.RowSelected) -> None:
        self.selected.append(message.row)


def strip_text(strip: Strip) -> str:
    return "".join(segment.text for segment in strip)


def strip_style(strip: Strip) -> Style:
    styles = [s.style for s in strip if s.text.strip() and s.style is not None]
    assert styles, "the line drew no text"
    return styles[0]


async def test_set_rows_with_one_changed_row_refreshes_exactly_one_line() -> None:
    app = TableApp(make_rows())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LineTable)
        before = table.lines_refreshed
        rows = make_rows()
        rows[500] = Row("n0500", ("n0500", "DOWN"), node="n0500", severity=Severity.CRITICAL)
        table.set_rows(rows)
        assert table.lines_refreshed == before + 1
        table.set_rows(rows)  # nothing changed, nothing refreshed
        assert table.lines_refreshed == before + 1
        assert table.rows[500].cells[1] == "DOWN"


async def test_cursor_moves_with_down_end_and_home() -> None:
    app = TableApp(make_rows())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LineTable)
        assert table.cursor == 0
        await pilot.press("down", "down")
        assert table.cursor == 2
        await pilot.press("end")
        assert table.cursor == ROWS - 1
        await pilot.pause()
        assert table.scroll_offset.y > 0  # the last row was scrolled into view
        await pilot.press("down")
        assert table.cursor == ROWS - 1  # clamped
        await pilot.press("home")
        assert table.cursor == 0
        await pilot.press("up")
        assert table.cursor == 0


async def test_enter_posts_row_selected_with_the_row() -> None:
    app = TableApp(make_rows())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()
        assert [r.key for r in app.selected] == ["n0003"]
        assert app.selected[0].node == "n0003"


async def test_the_cursor_follows_its_row_when_rows_are_inserted_above() -> None:
    app = TableApp(make_rows(10))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LineTable)
        await pilot.press("down", "down")
        assert table.current_row is not None and table.current_row.key == "n0002"
        table.set_rows([Row("new", ("new", "ok")), *make_rows(10)])
        assert table.current_row is not None and table.current_row.key == "n0002"


async def test_rows_with_a_severity_render_in_their_own_style() -> None:
    rows = make_rows(5)
    rows[2] = Row("n0002", ("n0002", "hot"), severity=Severity.WARNING)
    rows[3] = Row("n0003", ("n0003", "down"), severity=Severity.CRITICAL)
    app = TableApp(rows)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LineTable)
        # Screen line 0 is the header; row i is on line i + 1 (row 0 holds the cursor).
        ok = strip_style(table.render_line(2))
        warning = strip_style(table.render_line(3))
        critical = strip_style(table.render_line(4))
        assert "n0003" in strip_text(table.render_line(4))
        assert warning.color != ok.color
        assert critical.color != ok.color
        assert critical.bold and not ok.bold


async def test_escape_sequences_in_cells_never_reach_the_rendered_line() -> None:
    hostile = "\x1b]52;c;cm0gLXJmIC8K\x07evil\x1b[31m\x9b2J\u202e"
    # Rich drops BEL itself, so the styled cell uses ST-terminated sequences.
    hostile_styled = "\x1b]0;pwned\x1b\\\x1b[31mevil\x1b[0m\x9b2J\u202e"
    rows = [
        Row("plain", ("plain", "ok")),
        Row("str", ("str", hostile)),
        Row("text", ("text", Text(hostile_styled, style="bold"))),
    ]
    app = TableApp(rows)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(LineTable)
        for y in (2, 3):
            line = strip_text(table.render_line(y))
            assert "evil" in line
            for bad in ("\x1b", "\x9b", "\x07", "\u202e"):
                assert bad not in line
