"""The benchmark's rounds: a scenario's figure is its median round, each round to its own bare runs."""

from __future__ import annotations

import pytest

from bench.measure import Measurement, Round, median_round, neighbours, wait_until_idle


def at(rate: float) -> Measurement:
    return Measurement(requests=int(rate * 4), seconds=4.0, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0)


def test_each_round_is_judged_against_the_bare_runs_around_it():
    slow_host = Round(at(300), neighbours(at(1000), at(1400)))
    assert slow_host.ratio == pytest.approx(0.25)


def test_the_median_round_is_reported_and_one_stalled_round_does_not_move_it():
    rounds = [Round(at(250), at(1000)), Round(at(90), at(1000)), Round(at(270), at(1000))]  # the second stalled
    assert median_round(rounds).ratio == pytest.approx(0.25)
    assert median_round(rounds[:2]).ratio == pytest.approx(0.09)  # of two, the lower: never flattering
    with pytest.raises(ValueError):
        median_round([])


class Clock:
    """A server's CPU seconds, read after each wait: `readings` in turn, the last one for ever after."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)
        self.waits: list[float] = []

    def cpu_seconds(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_the_next_run_waits_until_the_requests_still_in_flight_are_served():
    server = Clock(5.0, 5.2, 5.31, 5.31)  # two windows busy with the last requests, then quiet
    assert wait_until_idle(server.cpu_seconds, window_s=0.1, sleep=server.sleep)
    assert server.waits == [0.1, 0.1, 0.1]


def test_a_server_that_never_goes_quiet_is_waited_for_no_longer_than_the_timeout():
    server = Clock(*[float(n) for n in range(100)])
    assert not wait_until_idle(server.cpu_seconds, window_s=0.5, timeout_s=2.0, sleep=server.sleep)
    assert sum(server.waits) == pytest.approx(2.0)
