"""MeetingService: past meetings in (the caller's own), and listed (its own and the shared ones)."""

from __future__ import annotations

from proxyvote.api.auth import Authenticator
from proxyvote.api.grpc_errors import unary
from proxyvote.app.meeting_import import MeetingImporter, SourceFile
from proxyvote.core.paging import encode_offset, page_bounds
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.v1 import meeting_service_pb2, meeting_service_pb2_grpc
from proxyvote.wire import convert

MAX_FILES = 100


class MeetingServicer(meeting_service_pb2_grpc.MeetingServiceServicer):
    def __init__(self, importer: MeetingImporter, auth: Authenticator):
        self._importer = importer
        self._auth = auth

    @unary(meeting_service_pb2.ImportMeetingsResponse)
    def ImportMeetings(self, request, context):
        tenant = self._auth.tenant(context)
        if not request.files:
            raise InvalidArgument([FieldViolation("files", "must hold at least one file")])
        if len(request.files) > MAX_FILES:
            raise InvalidArgument([FieldViolation("files", f"holds more than {MAX_FILES} files")])
        files = []
        for i, f in enumerate(request.files):
            if not f.name.strip():
                raise InvalidArgument([FieldViolation(f"files[{i}].name", "is required")])
            files.append(SourceFile(f.name, f.content, f.filer, f.source))
        report = self._importer.import_files(tenant, files)
        summary = report.summary
        return meeting_service_pb2.ImportMeetingsResponse(
            imported=summary.imported,
            merged=summary.merged,
            unchanged=summary.unchanged,
            skipped=[meeting_service_pb2.SkippedRecord(meeting_key=k, reason=r) for k, r in summary.skipped],
            files=[
                meeting_service_pb2.ImportedFile(
                    name=f.name,
                    format=f.format,
                    rows=f.rows,
                    meetings=f.meetings,
                    items=f.items,
                    investor_votes=f.investor_votes,
                )
                for f in report.files
            ],
        )

    @unary(meeting_service_pb2.ListMeetingsResponse)
    def ListMeetings(self, request, context):
        tenant = self._auth.tenant(context)
        date_from = convert.parse_as_of(request.date_from, "date_from")
        date_to = convert.parse_as_of(request.date_to, "date_to")
        start, size = page_bounds(request.page_size, request.page_token)
        meetings, total = self._importer.select(
            tenant, date_from, date_to, request.issuer.strip() or None, offset=start, limit=size
        )
        end = start + len(meetings)
        return meeting_service_pb2.ListMeetingsResponse(
            meetings=[convert.meeting_to_proto(m) for m in meetings],
            next_page_token=encode_offset(end) if end < total else "",
            total_size=total,
        )
