"""Where bytes that do not parse as a message go wrong: the field to name in the error.

A request that protobuf refuses (corrupt wire format, a string that is not
UTF-8) never reaches the converters, so nothing has named its bad field yet.
``locate`` walks the wire format alongside the descriptor and names the first
field it cannot read, as ``meeting.items[3].title``.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

WHOLE = "request"  # what an error names when the bytes go wrong outside any field
_MAX_DEPTH = 100


class _Corrupt(Exception):
    pass


def locate(descriptor: Descriptor, data: bytes) -> tuple[str, str]:
    """(field path, what is wrong) for bytes that do not parse as ``descriptor``."""
    found = _walk(descriptor, memoryview(data), "", 0)
    if found is None:
        return WHOLE, f"is not a valid {descriptor.full_name}: it does not parse"
    return found


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Corrupt
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _walk(descriptor: Descriptor, data: memoryview, path: str, depth: int) -> tuple[str, str] | None:
    """The first unreadable field under ``path``; None when nothing is found at this level."""
    where = path or WHOLE
    if depth > _MAX_DEPTH:
        return where, f"nests more than {_MAX_DEPTH} messages deep"
    counts: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        try:
            tag, pos = _varint(data, pos)
        except _Corrupt:
            return where, "is not valid protobuf: a field's tag is cut short"
        number, wire_type = tag >> 3, tag & 7
        field = descriptor.fields_by_number.get(number)
        name = f"{path}.{field.name}" if path and field else (field.name if field else where)
        if field is not None and field.is_repeated and field.message_type is not None:
            index = counts.get(number, 0)
            counts[number] = index + 1
            name = f"{name}[{index}]"
        if number == 0:
            return where, "is not valid protobuf: field number 0"
        try:
            if wire_type == 0:
                _, pos = _varint(data, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                length, pos = _varint(data, pos)
                end = pos + length
                if end > len(data):
                    raise _Corrupt
                body = data[pos:end]
                pos = end
                if field is not None and field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        bytes(body).decode("utf-8")
                    except UnicodeDecodeError:
                        return name, "is not valid UTF-8"
                elif field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                    found = _walk(field.message_type, body, name, depth + 1)
                    if found is not None:
                        return found
            else:  # groups (3, 4) are not used by this API; 6 and 7 do not exist
                return name, f"is not valid protobuf: wire type {wire_type}"
        except _Corrupt:
            return name, "is not valid protobuf: its value is cut short"
        if pos > len(data):
            return name, "is not valid protobuf: its value is cut short"
    return None


def nul_field(message, path: str = "") -> str | None:
    """The path of the first string field holding NUL (U+0000), which PostgreSQL cannot store."""
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    return f"{name}[{key!r}]"
                if isinstance(item, str) and "\x00" in item:
                    return f"{name}[{key!r}]"
                if hasattr(item, "ListFields"):
                    found = nul_field(item, f"{name}[{key!r}]")
                    if found:
                        return found
        elif field.type == FieldDescriptor.TYPE_STRING:
            values = value if field.is_repeated else (value,)
            for index, text in enumerate(values):
                if "\x00" in text:
                    return f"{name}[{index}]" if field.is_repeated else name
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            values = value if field.is_repeated else (value,)
            for index, item in enumerate(values):
                found = nul_field(item, f"{name}[{index}]" if field.is_repeated else name)
                if found:
                    return found
    return None
