"""Pages of a list (AIP-158): an offset behind an opaque token this service issued."""

from __future__ import annotations

import base64
import binascii

from proxyvote.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_bounds(page_size: int, page_token: str) -> tuple[int, int]:
    """(offset, size) of an AIP-158 page request; InvalidArgument on a bad size or token."""
    if page_size < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    return (decode_offset(page_token) if page_token else 0), min(
        page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
    )


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{offset}".encode()).decode()


def decode_offset(token: str) -> int:
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "v1" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument([FieldViolation("page_token", "is not a token this service issued")])
