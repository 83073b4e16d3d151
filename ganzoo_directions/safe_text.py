"""Untrusted strings shown as text: labels and names read from a direction file (which may come from
anyone's Hub repository) never act as Markdown, HTML or terminal control sequences."""

from __future__ import annotations

import html
import re
import unicodedata

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def _control(c: str) -> bool:
    return unicodedata.category(c).startswith("C")


def has_control(text: object) -> bool:
    """Whether ``text`` holds a control character (a line break, an ANSI escape, a format character)."""
    return any(_control(c) for c in str(text))


def plain(text: object) -> str:
    """``text`` without control characters (ANSI escape sequences, line breaks): one printable line."""
    return "".join(c for c in str(text) if not _control(c))


def markdown_text(text: object) -> str:
    """``text`` as literal text inside Markdown (the explorer page, the Hub model card): control
    characters dropped, HTML escaped, Markdown's special characters backslash-escaped. Quotes stay as
    they are: they are harmless in text, and the ``#`` of an ``&#x27;`` entity would be escaped into
    a literal "&#x27;" on the page."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(plain(text), quote=False))
