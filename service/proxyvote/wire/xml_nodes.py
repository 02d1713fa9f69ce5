"""Small helpers over lxml elements, for the formats' readers and writers (N-PX, seev).

Reading: an element's local name, its children by local name, text with its white
space collapsed. Writing: one element at a time, its text made XML-safe. XML 1.0
cannot carry most C0 control characters (nor U+FFFE/U+FFFF), and lxml refuses them.
Text we accepted elsewhere (a meeting title from a PDF, a caller's free text) may
hold one; in an outgoing message it becomes a space, so an export never fails on it.
Parsing itself (no entities, no network) is ``wire.npx.parse_xml``.
"""

from __future__ import annotations

import re

from lxml import etree

XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def local_name(element) -> str:
    """The element's name without its namespace ("" for a comment or processing instruction)."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def children(element, local: str) -> list:
    """The child elements named ``local``, in document order, whatever their namespace."""
    return [c for c in element if isinstance(c.tag, str) and local_name(c) == local]


def child(element, local: str):
    """The first child element named ``local``, or None."""
    found = children(element, local)
    return found[0] if found else None


def clean_text(text: str | None) -> str:
    """The text with its white space collapsed to single spaces and trimmed."""
    return " ".join((text or "").split())


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by a space."""
    return XML_ILLEGAL.sub(" ", text)


def sub_element(parent, namespace: str, local: str, text: str | None = None):
    """A child ``{namespace}local`` of ``parent``, with ``text`` (made XML-safe) when given."""
    element = etree.SubElement(parent, f"{{{namespace}}}{local}")
    if text is not None:
        element.text = xml_text(text)
    return element
