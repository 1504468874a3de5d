"""Settings: production refuses to start without its secrets; development has working defaults."""

from __future__ import annotations

import pytest

from app.config.settings import ConfigurationError, Settings
from app.main import create_app


def test_production_without_secrets_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings(env="production")
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    message = str(refused.value)
    for variable in [
        "TEARLINE_SECRET_KEY",
        "TEARLINE_JWT_PUBLIC_KEY_FILE",
        "TEARLINE_DATABASE_URL",
        "TEARLINE_HOME_NATION",
        "TEARLINE_AUDIT_KEY",
    ]:
        assert variable in message


def test_production_ignores_development_keys(monkeypatch, tmp_path, key_dir):
    """Keys lying in the development key folder never stand in for configured production keys."""
    keys = tmp_path / "data" / "keys"
    keys.mkdir(parents=True)
    (keys / "jwt-public.pem").write_text((key_dir / "jwt-public.pem").read_text())
    settings = Settings(
        env="production",
        data_dir=tmp_path / "data",
        secret_key="x",
        database_url=f"sqlite:///{tmp_path}/db.sqlite",
        home_nation="NLD",
    )
    with pytest.raises(ConfigurationError, match="TEARLINE_JWT_PUBLIC_KEY_FILE"):
        settings.check_startup()


def test_production_with_everything_configured_starts(tmp_path, key_dir):
    settings = Settings(
        env="production",
        secret_key="s3cret",
        jwt_public_key_file=key_dir / "jwt-public.pem",
        database_url=f"sqlite:///{tmp_path}/db.sqlite",
        home_nation="DEU",
        audit_key="audit-k",
    )
    assert create_app(settings).state.settings.home_nation == "DEU"


def test_development_without_any_key_refuses_with_a_hint(tmp_path):
    settings = Settings(data_dir=tmp_path / "empty")
    with pytest.raises(ConfigurationError, match="tearline keys generate"):
        settings.check_startup()


@pytest.mark.parametrize(
    "field, value",
    [("home_nation", "Netherlands"), ("jwt_algorithms", ["HS256"]), ("jwt_algorithms", ["none"]), ("max_page_size", 0)],
)
def test_invalid_values_are_refused(field, value):
    with pytest.raises(ValueError):
        Settings(**{field: value})


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("TEARLINE_HOME_NATION", "fra")
    monkeypatch.setenv("TEARLINE_MAX_PAGE_SIZE", "500")
    settings = Settings()
    assert (settings.home_nation, settings.max_page_size) == ("FRA", 500)
