"""Output helpers of the CLI: tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported where a table or a line is printed, not for a failing command's one line nor `offramp --version`.


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal (pipes, CI logs) rich would fold tables to 80 columns; keep lines whole instead.
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=not stream.isatty())


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def when(value: Any) -> str:
    """A timestamp for tables, to the second."""
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value or "")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table; an empty one says so."""
    rows = list(rows)
    console = _console()
    if not rows:
        console.print(f"{title}: none")
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def print_mapping(title: str, data: dict[str, Any]) -> None:
    """Print a nested mapping as indented ``key: value`` lines."""
    console = _console()
    console.print(f"[bold]{title}[/bold]")

    def walk(value: Any, indent: int) -> None:
        pad = "  " * indent
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict | list) and item:
                    console.print(f"{pad}{key}:", markup=False)
                    walk(item, indent + 1)
                elif isinstance(item, str) and "\n" in item.strip():
                    console.print(f"{pad}{key}:", markup=False)  # multi-line text (SQL) as an indented block
                    walk(item.strip("\n"), indent + 1)
                else:
                    shown = "" if item is None or item == {} or item == [] else item
                    console.print(f"{pad}{key}: {shown}", markup=False)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    walk(item, indent + 1)
                else:
                    console.print(f"{pad}- {item}", markup=False)
        else:
            for line in str(value).splitlines():
                console.print(f"{pad}{line}", markup=False)

    walk(data, 1)


def say(message: str) -> None:
    """A line of progress or result for people, on stdout."""
    _console().print(message, markup=False)


def warn(message: str) -> None:
    """A warning on stderr."""
    sys.stderr.write(f"offramp: warning: {message}\n")


def error_line(message: str, hint: str | None) -> str:
    """The one line a failed command prints; a message of several lines is joined into one."""
    text = message + (f" - {hint}" if hint else "")
    return "offramp: error: " + " ".join(line.strip() for line in text.splitlines() if line.strip())


__all__ = ["error_line", "print_json", "print_mapping", "print_table", "say", "warn", "when"]
