"""Schema changes, only through Alembic (``proxyvote db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser would read "%" in a password as interpolation.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    _run(command.upgrade, url, revision)


def downgrade(url: str, revision: str = "base") -> None:
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
    """The database's Alembic revision; Unavailable (one line) when it cannot be reached."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import OperationalError

    from proxyvote.errors import Unavailable

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise Unavailable(
            f"{engine.url.render_as_string(hide_password=True)}: {str(exc.orig).splitlines()[0]}"
        ) from exc


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
