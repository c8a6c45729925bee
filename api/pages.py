"""The public pages' templates (``api/templates``) with the project's message catalogue.

Templates are rendered by Jinja with its i18n extension (``jinja2.ext.i18n``); the gettext callables
installed into the environment read ``core.i18n``'s catalogue of the page's language, the ``lang``
variable of the template context (``en`` when missing), so one shared environment serves every
language without per-request state. Texts are written in templates as
``{{ pgettext("pay:total", "Total") }}`` (the key is the ``msgctxt``, the English msgid the fallback);
placeholders are ``str.format`` fields given as keywords: ``pgettext("pay:title", "Order #{number}",
number=12)``. Babel's Jinja extractor (``jinja2.ext.babel_extract``) finds them for the catalogue test.

:func:`page_language` picks the page language: the customer's conversation language when known,
else the company's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from core.i18n import catalogue, lang_of


def _language(context: Context) -> str:
    return lang_of(context.get("lang"))


@pass_context
def _gettext(context: Context, message: str, **values: object) -> str:
    text = catalogue(_language(context)).translations.gettext(message)
    return text.format(**values) if values else text


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int, **values: object) -> str:
    text = catalogue(_language(context)).translations.ngettext(singular, plural, n)
    return text.format(n=n, **values)


@pass_context
def _pgettext(context: Context, key: str, message: str, **values: object) -> str:
    text = catalogue(_language(context)).translations.pgettext(key, message)
    return text.format(**values) if values else text


@pass_context
def _npgettext(context: Context, key: str, singular: str, plural: str, n: int, **values: object) -> str:
    text = catalogue(_language(context)).translations.npgettext(key, singular, plural, n)
    return text.format(n=n, **values)


def page_templates(directory: Path) -> Jinja2Templates:
    """Templates of ``directory`` (autoescaped) with the i18n extension and the catalogue's gettext
    callables installed (``gettext``/``_``, ``ngettext``, ``pgettext``, ``npgettext``)."""
    templates = Jinja2Templates(directory=str(directory))
    templates.env.add_extension("jinja2.ext.i18n")
    templates.env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        gettext=_gettext, ngettext=_ngettext, newstyle=False, pgettext=_pgettext, npgettext=_npgettext
    )
    return templates


def page_language(*, conversation_language: str | None, company_language: str | None) -> str:
    """The language of a customer's page: the conversation's when known (and spoken by the catalogue),
    else the company's, else English."""
    if conversation_language and lang_of(conversation_language) == conversation_language.split("_")[0].lower():
        return lang_of(conversation_language)
    return lang_of(company_language)
