"""Quick-reply templates, pure: what is accepted at save time, how it renders, and that no
template can reach Python objects (the sandbox, behind a whitelist of the syntax tree)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError

from openlines.dialogs.domain import (
    DomainError,
    TemplateNotAllowed,
    TemplateSyntax,
    UnknownVariable,
)
from openlines.dialogs.domain.templates import (
    SANDBOX,
    TemplateValues,
    literal,
    render,
    validate,
)

VALUES = TemplateValues(
    customer_name="Carla Customer",
    operator_name="Ann Operator",
    line_name="Demo line",
    dialog_id="7f1c",
)


def test_every_variable_renders() -> None:
    template = (
        "Hi {{ customer.first_name }} ({{customer.name}}), {{ operator.name }} of"
        " {{ line.name }} here. Ref {{ dialog.id }}.\n"
    )
    validate(template)
    assert render(template, VALUES) == (
        "Hi Carla (Carla Customer), Ann Operator of Demo line here. Ref 7f1c.\n"
    )


def test_plain_text_and_comments_pass_through() -> None:
    assert render("Thanks! {# staff only #}See you.", VALUES) == "Thanks! See you."
    assert render("", VALUES) == ""


def test_a_customer_without_a_name_renders_empty_names() -> None:
    nameless = TemplateValues("", "Ann", "Demo", "1")
    assert render("[{{ customer.first_name }}|{{ customer.name }}]", nameless) == "[|]"


@pytest.mark.parametrize(
    "template",
    [
        "{{ customer.age }}",
        "{{ name }}",
        "{{ customer }}",
        "{{ customer.name.upper }}",
        "{{ operator.id }}",
    ],
)
def test_unknown_variables_are_refused_at_save_time(template: str) -> None:
    with pytest.raises(UnknownVariable) as refused:
        validate(template)
    assert refused.value.status == 422
    assert "customer.first_name" in refused.value.message  # it says what is known


@pytest.mark.parametrize("template", ["{{ customer.name ", "{% if %}", "{{ }}", "{% endif %}"])
def test_bad_syntax_is_refused_at_save_time(template: str) -> None:
    with pytest.raises(TemplateSyntax) as refused:
        validate(template)
    assert (refused.value.status, refused.value.code) == (422, "template_syntax")


# What template injection usually tries: attribute walks to Python's internals, Jinja's
# globals, item access, filters and calls, statements that run code or read files.
ATTACKS = [
    "{{ customer.__class__ }}",
    "{{ customer.name.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ customer['__class__'] }}",
    "{{ customer.name|attr('__class__') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config }}",
    "{{ range(10**9)|list }}",
    "{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% set x = customer.__class__ %}{{ x }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ customer.name ~ customer.name }}",
    "{{ 7 * 7 }}",
]


@pytest.mark.parametrize("template", ATTACKS)
def test_no_template_reaches_code(template: str) -> None:
    with pytest.raises((UnknownVariable, TemplateNotAllowed)) as refused:
        validate(template)
    assert refused.value.status == 422
    # ... and rendering, which validates first, refuses the same: nothing is evaluated.
    with pytest.raises(DomainError):
        render(template, VALUES)


def test_the_sandbox_itself_refuses_unsafe_attributes() -> None:
    """Defence in depth: were the whitelist to let a dotted walk through, Jinja's sandbox
    would still refuse it."""
    for unsafe in ("{{ x.__class__ }}", "{{ x.__class__.__mro__ }}", "{{ x.format.__globals__ }}"):
        with pytest.raises(SecurityError):
            SANDBOX.from_string(unsafe).render(x="s")


@given(st.text(max_size=300))
def test_any_text_saved_as_literal_renders_back_exactly(text: str) -> None:
    template = literal(text)
    validate(template)
    # Line breaks come out as "\n" (Jinja's newline_sequence), whatever they were.
    assert render(template, VALUES) == text.replace("\r\n", "\n").replace("\r", "\n")


def test_a_literal_keeps_braces_that_look_like_placeholders() -> None:
    message = "Use {{ code }} or {% raw %} in {# the form #}"
    assert render(literal(message), VALUES) == message
