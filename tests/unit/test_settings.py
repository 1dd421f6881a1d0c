import pytest

from streams.common.errors import SettingsError
from streams.common.settings import Settings


def test_defaults_and_overrides() -> None:
    settings = Settings.from_env(
        {
            "KPI_TOPIC_PARTITIONS": "8",
            "KPI_CHANNELS": "search, ads ,other",
            "KPI_BATCH_WITHIN_SECONDS": "0.25",
            "PATH": "/bin",
        }
    )
    assert settings.topic_partitions == 8
    assert settings.channels == ("search", "ads", "other")
    assert settings.batch_within_seconds == 0.25
    assert settings.business_timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KPI_TOPIC_PARTITIONS": "four"}, "KPI_TOPIC_PARTITIONS='four' is not a valid int"),
        ({"KPI_TOPIC_PARTITIONS": "0"}, "KPI_TOPIC_PARTITIONS must be positive"),
        ({"KPI_BUSINESS_TIMEZONE": "Mars/Olympus"}, "not a known time zone"),
        ({"KPI_CHANNELS": "search,ads"}, "must contain 'other'"),
        ({"KPI_REDIS_ULR": "redis://x"}, "unknown setting(s): KPI_REDIS_ULR"),
        ({"KPI_DAY_RETENTION_SECONDS": "86400"}, "KPI_DAY_RETENTION_SECONDS must be at least"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_stack_ports_point_the_service_at_the_stack() -> None:
    settings = Settings.from_env(
        {"KPI_REDIS_PORT": "6400", "KPI_KAFKA_PORT": "9999", "KPI_STACK_DIR": "/tmp/x"}
    )
    assert settings.redis_url == "redis://127.0.0.1:6400/0"
    assert settings.kafka_bootstrap == "127.0.0.1:9999"
    explicit = Settings.from_env({"KPI_REDIS_PORT": "6400", "KPI_REDIS_URL": "redis://r:1/2"})
    assert explicit.redis_url == "redis://r:1/2"


def test_secrets_can_come_from_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "token"
    secret.write_text("glsa_secret\n")
    settings = Settings.from_env({"KPI_GRAFANA_TOKEN_FILE": str(secret)})
    assert settings.grafana_token == "glsa_secret"
    assert "glsa_secret" not in repr(settings)
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"KPI_GRAFANA_TOKEN": "a", "KPI_GRAFANA_TOKEN_FILE": str(secret)})
    with pytest.raises(SettingsError, match="cannot read the file"):
        Settings.from_env({"KPI_REDIS_URL_FILE": str(tmp_path / "missing")})
