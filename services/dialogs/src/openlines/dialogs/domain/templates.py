"""Quick-reply templates: plain text with a few placeholders (`{{ customer.name }}`...),
checked when a reply is saved and rendered when it is sent. Pure.

Jinja2's sandbox renders them, but a template is first held to a whitelist of its syntax
tree: text, string constants and exactly the known `{{ object.field }}` placeholders. Anything
else (filters, calls, loops, item access, `__class__` tricks) is refused at save time with a
422, so what is stored can neither run code nor fail at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from openlines.dialogs.domain.refusals import TemplateNotAllowed, TemplateSyntax, UnknownVariable

VARIABLES: tuple[str, ...] = (
    "customer.name",
    "customer.first_name",
    "operator.name",
    "line.name",
    "dialog.id",
)
_KNOWN = frozenset(tuple(v.split(".")) for v in VARIABLES)
PLACEHOLDERS = ", ".join("{{ " + v + " }}" for v in VARIABLES)
_LISTED = PLACEHOLDERS

# Autoescape off: the text goes to a messenger, not into HTML.
SANDBOX = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)


@dataclass(frozen=True)
class TemplateValues:
    """What the placeholders stand for in one dialog, for one operator."""

    customer_name: str
    operator_name: str
    line_name: str
    dialog_id: str

    @property
    def customer_first_name(self) -> str:
        # Telegram's first name comes first in the name the channel gives us.
        return self.customer_name.split(maxsplit=1)[0] if self.customer_name.strip() else ""

    def context(self) -> dict[str, dict[str, str]]:
        return {
            "customer": {"name": self.customer_name, "first_name": self.customer_first_name},
            "operator": {"name": self.operator_name},
            "line": {"name": self.line_name},
            "dialog": {"id": self.dialog_id},
        }


def validate(source: str) -> None:
    """Raise a 422 `DomainError` unless `source` is text with known placeholders only."""
    _checked(source)


def render(source: str, values: TemplateValues) -> str:
    template = _checked(source)
    try:
        return template.render(values.context())
    except TemplateError as exc:  # the whitelist leaves nothing that fails here; be safe
        raise TemplateNotAllowed(f"the template cannot be rendered: {exc}") from exc


def literal(text: str) -> str:
    """A template that renders as exactly `text` (a saved message may contain `{{`), but
    for line breaks, which every template renders as "\\n"."""
    return re.sub(r"\{[{%#]", lambda m: '{{ "' + m.group(0) + '" }}', text)


@lru_cache(maxsize=512)
def _checked(source: str) -> Template:
    """The compiled template, once its syntax tree passed the whitelist."""
    try:
        tree = SANDBOX.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateSyntax(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            raise TemplateNotAllowed(
                f"only text and the placeholders {_LISTED} may be used"
                f" (found {type(node).__name__.lower()})"
            )
        for part in node.nodes:
            _check_part(part)
    return SANDBOX.from_string(tree)


def _check_part(part: nodes.Node) -> None:
    if isinstance(part, nodes.TemplateData):
        return
    if isinstance(part, nodes.Const) and isinstance(part.value, str):
        return  # `{{ "{{" }}`: how a literal brace pair is written
    path = _dotted(part)
    if path is None:
        raise TemplateNotAllowed(
            f"only the placeholders {_LISTED} may be used (found {type(part).__name__.lower()})"
        )
    if path not in _KNOWN:
        raise UnknownVariable(f"unknown variable {'.'.join(path)!r}; known: {_LISTED}")


def _dotted(node: nodes.Node) -> tuple[str, ...] | None:
    """`a.b.c` as ("a", "b", "c"); None for anything that is not a plain dotted name."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        head = _dotted(node.node)
        return None if head is None else (*head, node.attr)
    return None
