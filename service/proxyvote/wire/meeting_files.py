"""A file of past meetings, whatever its format, as domain meetings.

Formats, recognised by content (the extension breaks a tie):

- ``meeting``: one of our meeting files (data-format.md), or a JSON list of them;
- ``npx-xml``: an SEC N-PX vote table (``proxyVoteTable``);
- ``npx-jsonl``: N-PX records as JSON lines (the shape of records-dev.jsonl).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire import convert, npx

FORMATS = ("meeting", "npx-xml", "npx-jsonl")


@dataclass(frozen=True, slots=True)
class MeetingFile:
    """What one file gave: its format, its meetings, the rows read and what was skipped (meeting_key, why)."""

    name: str
    format: str
    meetings: tuple
    rows: int
    skipped: tuple[tuple[str, str], ...] = ()


def detect_format(name: str, content: bytes) -> str:
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    lower = name.lower()
    if head == b"<" or content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "npx-xml"
    if lower.endswith((".jsonl", ".ndjson")):
        return "npx-jsonl"
    if head == b"[":
        return "meeting"
    if head == b"{":
        first = content.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "meeting"  # a pretty-printed object: one meeting
        return "npx-jsonl" if isinstance(record, dict) and "vote_description" in record else "meeting"
    if lower.endswith(".xml"):
        return "npx-xml"
    raise InvalidArgument(
        [FieldViolation(name, "is neither a meeting (JSON), an N-PX vote table (XML) nor N-PX JSON lines")]
    )


def _text(name: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument([FieldViolation(name, f"is not UTF-8 text (byte {exc.start})")]) from exc


def read_meeting_file(name: str, content: bytes, filer: str = "", source: str = "") -> MeetingFile:
    """The domain meetings of one file; InvalidArgument naming the element or line at fault.

    ``filer`` names the fund of an N-PX XML vote table (the table does not) and is
    the default filer of JSON lines without one; ``source`` (the filing, e.g. its
    accession number) defaults to the file's base name.
    """
    kind = detect_format(name, content)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if kind == "npx-xml":
        stem = base.rsplit(".", 1)[0]
        result = npx.meetings_from_xml(content, name, filer or stem, source or base)
        return MeetingFile(name, kind, result.meetings, result.rows, result.skipped)
    text = _text(name, content)
    if kind == "npx-jsonl":
        result = npx.meetings_from_jsonl(text, name, filer, source or base)
        return MeetingFile(name, kind, result.meetings, result.rows, result.skipped)
    if text.lstrip().startswith("["):
        try:
            documents = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                [FieldViolation(f"{name}:line {exc.lineno}", f"not JSON: {exc.msg}")]
            ) from exc
        meetings = tuple(
            convert.meeting_from_json(json.dumps(document), field=f"{name}[{i}]")
            for i, document in enumerate(documents)
        )
        return MeetingFile(name, kind, meetings, len(meetings))
    return MeetingFile(name, kind, (convert.meeting_from_json(text, field=name),), 1)
