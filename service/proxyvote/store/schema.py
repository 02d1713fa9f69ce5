"""Schema changes, only through Alembic (``proxyvote db upgrade``)."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str):
    from alembic.config import Config  # only the db commands pay for Alembic

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser would read "%" in a password as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    _run(command.upgrade, url, revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    _run(command.downgrade, url, revision)


def _run(step, url: str, revision: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from proxyvote.errors import Unavailable

    try:
        step(alembic_config(url), revision)
    except OperationalError as exc:
        where = make_url(url).render_as_string(hide_password=True)
        raise Unavailable(f"{where}: {str(exc.orig).splitlines()[0]}") from exc


def current_revision(engine) -> str | None:
    """The database's Alembic revision (its ``alembic_version`` row), read without importing
    Alembic (serving starts faster); Unavailable (one line) when it cannot be reached."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import OperationalError

    from proxyvote.errors import Unavailable

    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise Unavailable(
            f"{engine.url.render_as_string(hide_password=True)}: {str(exc.orig).splitlines()[0]}"
        ) from exc


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*['"]([^'"]*)['"]""", re.M)


def head_revision() -> str:
    """The newest migration's revision, from the scripts' own ``revision``/``down_revision``
    lines (tests check it equals Alembic's head); no Alembic import."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {heads}")
    return heads[0]


def alembic_head_revision() -> str:
    """Alembic's own view of the head (for the check above, and the db commands)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
