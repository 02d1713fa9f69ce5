"""One settings object: defaults, then the environment, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from proxyvote.errors import ConfigurationError
from proxyvote.settings import Settings, markdown_table, repository_root

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_point_into_the_checkout_and_at_the_embedded_database():
    settings = Settings.load({})
    assert settings.addr == "127.0.0.1:50051"
    assert settings.database_url == "sqlite:///var/proxyvote.db"
    assert settings.policy_dir == repository_root() / "policies"
    assert (settings.policy_dir / "taxonomy.yaml").is_file()
    assert settings.allow_plaintext is False


def test_the_environment_overrides_a_default_and_a_flag_overrides_the_environment():
    environ = {"PROXYVOTE_ADDR": "127.0.0.1:6000", "DATABASE_URL": "sqlite:///env.db"}
    settings = Settings.load(environ, database_url="sqlite:///flag.db")
    assert settings.addr == "127.0.0.1:6000"
    assert settings.database_url == "sqlite:///flag.db"
    assert Settings.load({"PROXYVOTE_POLICY_DIR": "mine"}).policy_dir == Path("mine")


def test_a_flag_that_is_not_a_yes_or_no_is_refused_with_its_variable():
    with pytest.raises(ConfigurationError, match="PROXYVOTE_ALLOW_PLAINTEXT"):
        Settings.load({"PROXYVOTE_ALLOW_PLAINTEXT": "maybe"})
    with pytest.raises(ConfigurationError, match="PROXYVOTE_MAX_WORKERS"):
        Settings.load({"PROXYVOTE_MAX_WORKERS": "many"})


def test_the_readme_lists_every_setting_as_the_code_defines_it():
    assert markdown_table() in README.read_text()


def test_serve_help_lists_every_setting(capsys):
    from proxyvote.cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for line in markdown_table().splitlines()[2:]:
        assert line.split("`")[1] in out
