"""METRICS_*, LOG_* and ACCESS_LOG: defaults per environment, refused values, and the access line switched off."""

from __future__ import annotations

import pytest

from idp.config import ConfigError, observability_settings
from tests.observability.conftest import capturing_logs, scrape, value


def test_logs_are_json_in_production_and_text_elsewhere_unless_told():
    assert observability_settings({}, production=True).log_format == "json"
    assert observability_settings({}, production=False).log_format == "text"
    assert observability_settings({"LOG_FORMAT": "JSON"}, production=False).log_format == "json"
    chosen = observability_settings({"LOG_LEVEL": "debug", "METRICS_ENABLED": "off", "ACCESS_LOG": "false"}, production=False)
    assert (chosen.log_level, chosen.metrics_enabled, chosen.access_log) == ("DEBUG", False, False)


@pytest.mark.parametrize(
    ("env", "production", "named"),
    [
        ({"LOG_FORMAT": "xml"}, False, "LOG_FORMAT"),
        ({"LOG_LEVEL": "LOUD"}, False, "LOG_LEVEL"),
        ({"METRICS_ENABLED": "maybe"}, False, "METRICS_ENABLED"),
        ({"METRICS_TOKEN": "short"}, True, "METRICS_TOKEN"),
    ],
)
def test_an_unusable_value_stops_start_up_naming_the_variable(env, production, named):
    with pytest.raises(ConfigError, match=named):
        observability_settings(env, production=production)


def test_the_metrics_token_is_kept_out_of_the_settings_repr():
    assert "s3cret-token" not in repr(observability_settings({"METRICS_TOKEN": "s3cret-token"}, production=False))


def test_access_log_false_writes_no_access_line_but_still_counts(make_app):
    app = make_app(ACCESS_LOG="false")
    with capturing_logs() as logs:
        assert app.test_client().get("/api/health/live").status_code == 200
    assert not [line for line in logs.lines if "idp.access" in line]
    samples = scrape(app.test_client())
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/health/live", method="GET", status="200") == 1
