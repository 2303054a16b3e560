"""The benchmark's rounds: a scenario's figure is its median round, each round to its own bare runs."""

from __future__ import annotations

import pytest

from bench.measure import Measurement, Round, median_round, neighbours


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
