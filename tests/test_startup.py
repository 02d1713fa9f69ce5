"""Serving imports only what serving needs, and knows the schema's head without Alembic."""

from __future__ import annotations

import subprocess
import sys

from proxyvote.store import open_store
from proxyvote.store.schema import alembic_head_revision, current_revision, head_revision, upgrade

# Stacks that only some commands need: migrations, PDFs, backtest reports and tables, Dask,
# training, and the CEL package's own interactive shell.
NOT_FOR_SERVING = (
    "alembic",
    "weasyprint",
    "matplotlib",
    "pandas",
    "pyarrow",
    "dask",
    "sklearn",
    "prompt_toolkit",
)


def test_the_schema_head_read_from_the_scripts_is_alembics():
    assert head_revision() == alembic_head_revision()


def test_the_current_revision_is_read_without_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    store = open_store(url)
    try:
        assert current_revision(store.engine) is None
        upgrade(url)
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_serving_imports_none_of_the_heavy_stacks():
    probe = (
        "import sys, proxyvote.cli, proxyvote.api.server, proxyvote.app.wiring; "
        f"print(','.join(m for m in {NOT_FOR_SERVING!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""
