"""Hostile XML for the importers' tests: entity expansion (billion laughs) and an external
entity, each wrapped in the body a given format expects. ``body`` holds ``{entity}``
where the entity is referenced."""

from __future__ import annotations

_LAUGHS = "\n".join(
    f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 2 else "") + ";") * 10}">' for n in range(2, 10)
)


def billion_laughs(body: str) -> bytes:
    """Nine levels of ten: a billion "lol"s if anything expands it."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n{_LAUGHS}\n]>\n'
        + body.format(entity="&lol9;")
    ).encode()


def external_entity(body: str) -> bytes:
    """An entity naming a local file: its content must never appear."""
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE d [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
        + body.format(entity="&xxe;")
    ).encode()
