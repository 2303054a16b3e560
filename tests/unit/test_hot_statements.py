"""The prepared form of a hot statement (idp.statements)."""

from __future__ import annotations

from idp.statements import prepared_forms


def test_named_parameters_become_numbered_ones_once_each():
    prepare, execute = prepared_forms("s1", "SELECT %(a)s, %(b)s::JSON WHERE x = %(a)s AND y LIKE 'p%%'")
    assert prepare == "PREPARE s1 AS SELECT $1, $2::JSON WHERE x = $1 AND y LIKE 'p%'"
    assert execute == "EXECUTE s1(%(a)s, %(b)s)"
    assert prepared_forms("s2", "SELECT 1") == ("PREPARE s2 AS SELECT 1", "EXECUTE s2")
