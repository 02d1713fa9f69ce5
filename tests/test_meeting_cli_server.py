"""`proxyvote meetings import|list --server`: through a real server, into the caller's own meetings."""

from __future__ import annotations

import json

import pytest
from proxyvote.cli.main import main
from proxyvote.store import SHARED

from tests.test_meeting_import import EXTERNAL_ENTITY, jsonl, record, row_xml, table_xml

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(running_server):
    r = running_server
    return r.address, {"PROXYVOTE_API_KEY": r.key, "DATABASE_URL": r.url}, r.app, r.tenant


def test_the_cli_imports_through_the_server_as_the_callers_own(served, tmp_path, capsys):
    address, env, app, tenant = served
    xml = tmp_path / "harbour.xml"
    xml.write_bytes(table_xml(row_xml(), row_xml(description="Ratify the auditor.", how="AGAINST")))
    lines = tmp_path / "tide.jsonl"
    lines.write_bytes(jsonl(record(filer="Tidewater Trust", how_voted="FOR")))
    args = ["meetings", "import", str(xml), str(lines), "--filer", "Harbour Fund", "--server", address]
    assert main(args, env) == 0
    out = capsys.readouterr().out
    assert "imported 1, merged 0, unchanged 0 (your meetings)" in out
    assert main([*args, "--format", "json"], env) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    # Stored as the tenant's own, not in the shared set.
    assert app.store.meetings.count((tenant,)) == 1 and app.store.meetings.count((SHARED,)) == 0
    (stored,) = app.store.meetings.select((tenant,))
    assert {v.investor for i in stored.items for v in i.investor_votes} == {"Harbour Fund", "Tidewater Trust"}
    assert main(["meetings", "list", "--server", address, "--from", "2025-01-01"], env) == 0
    assert "1 meeting(s)" in capsys.readouterr().out

    bad = tmp_path / "bad.xml"
    bad.write_bytes(EXTERNAL_ENTITY)
    assert main(["meetings", "import", str(xml), str(bad), "--server", address], env) == 2
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "bad.xml:line 2" in err and "entity declarations are refused" in err
