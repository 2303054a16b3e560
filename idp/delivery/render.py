"""Messages rendered from templates: templates/email/<name>/{subject.txt,body.txt,body.html}, templates/sms/<name>.txt."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, StrictUndefined

from idp.delivery.messages import OutgoingEmail, OutgoingSms

TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class MessageRenderer:
    """Renders with the app's Jinja environment (same loader, filters and autoescaping: HTML
    templates are escaped, .txt ones are plain text), but a missing variable is an error, not a blank."""

    def __init__(self, env: Environment) -> None:
        self._env = env.overlay(undefined=StrictUndefined)

    def email(self, to: str, template: str, context: dict[str, Any]) -> OutgoingEmail:
        folder = f"email/{_checked(template)}"
        subject = self._render(f"{folder}/subject.txt", context)
        return OutgoingEmail(
            to=to,
            # one line, whatever the template or its values hold (no header injection, no folding surprises)
            subject=" ".join(subject.split()),
            text=self._render(f"{folder}/body.txt", context).strip() + "\n",
            html=self._render(f"{folder}/body.html", context),
        )

    def sms(self, to: str, template: str, context: dict[str, Any]) -> OutgoingSms:
        return OutgoingSms(to=to, body=self._render(f"sms/{_checked(template)}.txt", context).strip())

    def _render(self, name: str, context: dict[str, Any]) -> str:
        return self._env.get_template(name).render(context)


def _checked(template: str) -> str:
    if not TEMPLATE_NAME.match(template):
        raise ValueError(f"not a message template name: {template!r}")
    return template
