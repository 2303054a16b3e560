"""Reading what operators read: the scraped /metrics text and the lines the app's log handler writes."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from idp.observability.logs import LogHandler

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse_metrics(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value, 0 when it is absent (a counter never incremented has no child)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


class LogLines:
    """The text the app's handler writes, while the capture lasts."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Each line as JSON (fails on a line that is not one object)."""
        parsed = [json.loads(line) for line in self.lines]
        assert all(isinstance(p, dict) for p in parsed)
        return parsed


@contextlib.contextmanager
def capturing_logs() -> Iterator[LogLines]:
    """Point the app's log handler (installed by the latest create_app) at a buffer for the block."""
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, LogHandler)]
    capture = LogLines()
    previous = handler.setStream(capture.stream)
    try:
        yield capture
    finally:
        handler.setStream(previous or sys.__stderr__)
