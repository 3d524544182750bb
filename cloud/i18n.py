"""Words in catalogs: gettext translations read from the .po files, and the reader's language."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: Final = ("en", "es")
DEFAULT: Final = "en"


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; ``_`` translates it where shown."""
    return message


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The catalog of ``lang`` (English is the source language: no catalog needed)."""
    if lang == DEFAULT:
        return NullTranslations()
    po = resources.files("cloud") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def gettext_for(lang: str) -> Callable[[str], str]:
    """The ``_`` function of a language."""
    return translations(lang).gettext


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The switch's choice, else the browser's preferred language we have, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    prefs: list[tuple[float, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag:
            prefs.append((q - i * 1e-6, tag.replace("_", "-")))
    for _q, tag in sorted(prefs, reverse=True):
        try:
            lang = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if lang in LANGUAGES:
            return lang
    return DEFAULT


def parse_time(text: str) -> datetime | None:
    """An ISO time from an event or reading."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


@functools.cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


@functools.cache
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def when(text: str | None, lang: str, tz: str, fmt: str = "medium") -> str:
    """A time in the installation's zone, in the reader's locale."""
    moment = parse_time(text or "")
    if moment is None:
        return ""
    return format_datetime(moment, fmt, tzinfo=_zone(tz), locale=_locale(lang))
