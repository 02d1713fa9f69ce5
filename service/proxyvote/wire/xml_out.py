"""Writing XML text with lxml: one element at a time, text made XML-safe.

XML 1.0 cannot carry most C0 control characters (nor U+FFFE/U+FFFF), and lxml
refuses them. Text we accepted elsewhere (a meeting title from a PDF, a
caller's free text) may hold one; in an outgoing message it becomes a space,
so an export never fails on it.
"""

from __future__ import annotations

import re

from lxml import etree

XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by a space."""
    return XML_ILLEGAL.sub(" ", text)


def sub_element(parent, namespace: str, local: str, text: str | None = None):
    """A child ``{namespace}local`` of ``parent``, with ``text`` (made XML-safe) when given."""
    element = etree.SubElement(parent, f"{{{namespace}}}{local}")
    if text is not None:
        element.text = xml_text(text)
    return element
