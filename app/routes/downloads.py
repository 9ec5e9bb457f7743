"""Downloads: files the instructors' pages and API both hand out."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.authoring import stats
from app.bank import service as bank
from app.db import Database

CSV_LINES_PER_CHUNK = 1000  # ~180 KiB: few thread-pool hops, still a streamed download


def download(content: str | bytes, media_type: str, filename: str) -> Response:
    """A response the browser saves as `filename`."""
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def attempts_csv_response(request: Request, session: Session, pattern: str | None) -> Response:
    """Attempts (of a pattern, which must exist) as a streamed CSV download. The rows are
    read in a session of their own: the request's ends before the body is sent."""
    if pattern is not None:
        bank.get_pattern_or_raise(session, pattern)
    session.close()  # the request's read ends here; the body is read by a session of its own
    database: Database = request.app.state.db

    def chunks() -> Iterator[str]:
        # Starlette moves each chunk of a plain iterator through the thread pool: lines one
        # by one cost a hop each (measured: bench/stats.py), so they go in batches.
        with database.session() as own:
            batch: list[str] = []
            for line in stats.attempts_csv(own, pattern_slug=pattern):
                batch.append(line)
                if len(batch) >= CSV_LINES_PER_CHUNK:
                    yield "".join(batch)
                    batch.clear()
            yield "".join(batch)

    name = f"attempts-{pattern}.csv" if pattern else "attempts.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
