"""Small helpers for the words a person reads, shared by every room (messages, pages, the
command line): nothing here knows of HTTP, the database or questions."""

from __future__ import annotations


def plural(count: int, one: str, many: str | None = None) -> str:
    """A count with its noun agreeing: `plural(3, 'epoch')` is "3 epochs", 1 "1 epoch"
    (`many`: the plural of a noun that does not just add an s)."""
    return f"{count} {one if count == 1 else many or one + 's'}"
