"""Accessibility checks with axe-core (bundled by axe-playwright-python) on a Playwright page."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING = ("serious", "critical")

_axe = Axe()


def axe_violations(page: Page, *, context: str | list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every axe-core violation on the page as it is now (all impacts)."""
    violations: list[dict[str, Any]] = _axe.run(page, context=context).response["violations"]
    return violations


def assert_accessible(
    page: Page, *, context: str | list[Any] | dict[str, Any] | None = None, impacts: Collection[str] = BLOCKING
) -> None:
    """Fail listing the violations whose impact is serious or critical (minor and moderate pass)."""
    found = [v for v in axe_violations(page, context=context) if v.get("impact") in impacts]
    if found:
        raise AssertionError(
            f"axe-core: {len(found)} {'/'.join(impacts)} violation(s) on {page.url}\n" + "\n".join(map(_describe, found))
        )


def _describe(violation: dict[str, Any]) -> str:
    lines = [f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>"]
    for node in violation["nodes"]:
        target = ", ".join(str(t) for t in node["target"])
        lines.append(f"    {target}: {node.get('html', '').strip()[:200]}")
        if node.get("failureSummary"):
            lines.extend(f"      {line}" for line in node["failureSummary"].splitlines())
    return "\n".join(lines)
