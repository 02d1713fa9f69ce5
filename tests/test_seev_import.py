"""`proxyvote import seev001` and MeetingService.ImportMeetings with a seev.001 file:
stored whole or not at all, idempotent, the unmapped elements listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from proxyvote.app.meeting_import import MeetingImporter, SourceFile
from proxyvote.cli.main import main
from proxyvote.errors import InvalidArgument
from proxyvote.store import SHARED

from tests.test_meeting_import import _sqlite_store
from tests.test_seev import EXTERNAL_ENTITY, MALFORMED

FIXTURES = Path(__file__).parent / "fixtures" / "seev"
SYNTHETIC = FIXTURES / "synthetic-2025-mixd.seev001.xml"
AMAZON = FIXTURES / "amazon-2020-agm.seev001.xml"


def test_a_notification_is_stored_once_with_its_notes_in_the_summary(tmp_path):
    store = _sqlite_store(tmp_path)
    importer = MeetingImporter(store.meetings)
    files = [SourceFile(str(SYNTHETIC), SYNTHETIC.read_bytes())]
    report = importer.import_shared(files)
    assert (report.summary.imported, report.files[0].format, report.files[0].items) == (1, "seev001", 3)
    reasons = [reason for _, reason in report.summary.skipped]
    assert any("/Document/MtgNtfctn/Scty/Pos (line 45)" in r for r in reasons)
    assert any("Rsltn[4] (line 137): resolution 4 is withdrawn" in r for r in reasons)
    again = importer.import_shared(files)
    assert (again.summary.imported, again.summary.unchanged) == (0, 1)
    (stored,) = store.meetings.select((SHARED,))
    assert stored.meeting_id == "SYN-2025-MIXD" and [i.item_id for i in stored.items] == ["1", "2", "3"]
    store.close()


@pytest.mark.parametrize("bad", [MALFORMED, EXTERNAL_ENTITY], ids=["malformed", "external-entity"])
def test_a_bad_notification_rejects_the_call_and_stores_nothing(tmp_path, bad):
    store = _sqlite_store(tmp_path)
    importer = MeetingImporter(store.meetings)
    good = SourceFile(str(AMAZON), AMAZON.read_bytes())
    with pytest.raises(InvalidArgument) as caught:
        importer.import_shared([good, SourceFile("bad.xml", bad)])
    assert all(v.field.startswith("bad.xml:line ") for v in caught.value.violations)
    assert store.meetings.count((SHARED,)) == 0
    store.close()


@pytest.mark.e2e
def test_the_cli_imports_seev001_through_the_server_and_locally(running_server, tmp_path, capsys):
    r = running_server
    env = {"PROXYVOTE_API_KEY": r.key, "DATABASE_URL": r.url}
    args = ["import", "seev001", str(SYNTHETIC), "--server", r.address]
    assert main(args, env) == 0
    out = capsys.readouterr().out
    assert "ISO 20022 seev.001 MeetingNotification" in out and "imported 1" in out
    assert "/Document/MtgNtfctn/Rsltn[1]/NtifngPtyRcmmndtn (line 78)" in out
    assert main([*args, "--format", "json"], env) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    assert r.app.store.meetings.count((r.tenant,)) == 1
    bad = tmp_path / "bad.xml"
    bad.write_bytes(MALFORMED)
    assert main(["import", "seev001", str(AMAZON), str(bad), "--server", r.address], env) == 2
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "bad.xml:line 5" in err and "NtfctnTp" in err
    assert r.app.store.meetings.count((r.tenant,)) == 1  # nothing of the call stored
    not_seev = tmp_path / "meeting.json"
    not_seev.write_text("{}")
    assert main(["import", "seev001", str(not_seev), "--server", r.address], env) == 2
    assert "is not an ISO 20022 seev.001 MeetingNotification" in capsys.readouterr().err
