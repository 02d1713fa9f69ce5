"""Shared fixtures: the bundled policies, the example meetings and evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from proxyvote import convert
from proxyvote.recommender import Recommender

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TODAY = dt.date(2026, 11, 23)


def meeting_message(name: str = "amazon-2020-agm"):
    return convert.meeting_from_json((EXAMPLES / "meetings" / f"{name}.json").read_text())


def evidence_messages():
    return list(convert.evidence_file_from_json((EXAMPLES / "evidence" / "amazon.json").read_text()).records)


@pytest.fixture(scope="session")
def recommender() -> Recommender:
    return Recommender.from_directory()
