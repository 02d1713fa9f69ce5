"""Importing past meetings: files in, converted once by the wire, stored by the repository.

Every file of one call is read and converted before anything is stored, and
all are stored in one transaction: one bad file rejects the call whole.
The CLI without ``--server`` imports into the shared set (owner ``SHARED``);
``MeetingService.ImportMeetings`` into the calling tenant's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from proxyvote.core.model import Meeting
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.store import SHARED
from proxyvote.store.meetings import ImportSummary, PastMeetingRepository
from proxyvote.wire.meeting_files import MeetingFile, read_meeting_file

MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to import: its name (for errors and the default filing), its bytes, and for
    N-PX the filer (an XML vote table does not name it) and filing (e.g. the accession number)."""

    name: str
    content: bytes
    filer: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class FileReport:
    name: str
    format: str
    rows: int
    meetings: int
    items: int
    investor_votes: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    files: tuple[FileReport, ...]
    summary: ImportSummary


def read_source_files(paths: Sequence[str], filer: str = "", source: str = "") -> list[SourceFile]:
    """The files as SourceFiles; InvalidArgument naming one that cannot be read."""
    out = []
    for path in paths:
        try:
            size = Path(path).stat().st_size
            if size > MAX_FILE_BYTES:
                raise InvalidArgument([FieldViolation(path, f"is larger than {MAX_FILE_BYTES} bytes")])
            out.append(SourceFile(path, Path(path).read_bytes(), filer, source))
        except OSError as exc:
            raise InvalidArgument([FieldViolation(path, f"cannot be read: {exc.strerror or exc}")]) from exc
    return out


def convert_files(files: Sequence[SourceFile]) -> list[MeetingFile]:
    """Every file converted (all of them before anything is stored); the first bad one raises."""
    if not files:
        raise InvalidArgument([FieldViolation("files", "must hold at least one file")])
    return [read_meeting_file(f.name, f.content, f.filer, f.source) for f in files]


class MeetingImporter:
    def __init__(self, repository: PastMeetingRepository):
        self.repository = repository

    def import_files(self, owner: str, files: Sequence[SourceFile]) -> ImportReport:
        converted = convert_files(files)
        meetings: list[Meeting] = [m for f in converted for m in f.meetings]
        summary = self.repository.import_meetings(owner, meetings)
        skipped = tuple(s for f in converted for s in f.skipped)
        reports = tuple(
            FileReport(
                f.name,
                f.format,
                f.rows,
                len(f.meetings),
                sum(len(m.items) for m in f.meetings),
                sum(len(i.investor_votes) for m in f.meetings for i in m.items),
            )
            for f in converted
        )
        return ImportReport(
            reports,
            ImportSummary(
                summary.imported,
                summary.merged,
                summary.unchanged,
                summary.skipped + skipped,
                summary.results,
            ),
        )

    def import_shared(self, files: Sequence[SourceFile]) -> ImportReport:
        return self.import_files(SHARED, files)

    @staticmethod
    def owners(tenant: str) -> tuple[str, ...]:
        return (tenant, SHARED) if tenant != SHARED else (SHARED,)

    def select(
        self,
        tenant: str,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        issuer: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[Meeting], int]:
        """A page of the meetings the tenant sees (its own and the shared ones), and their total."""
        owners = self.owners(tenant)
        meetings = self.repository.select(owners, date_from, date_to, issuer, offset=offset, limit=limit)
        return meetings, self.repository.count(owners, date_from, date_to, issuer)
