"""Printing benchmark results as Markdown tables."""

from __future__ import annotations

__all__ = ["markdown_table", "print_table"]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with aligned columns."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return "| " + " | ".join(cells) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), separator, *(line(row) for row in rows)])


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table."""
    print(markdown_table(header, rows))
