"""File names as the file system has them, bytes in any encoding, shown as printable text.

A recorder, a card formatted elsewhere or a hand copy can give a name that is not UTF-8 (`caf\\xe9.wav` from a
Latin-1 system), or one with a newline in it. Python holds such a name as a str with lone surrogates, which
SQLite, JSON and MQTT refuse. Everything that is not a file system call (the state database, logs, records,
notes) uses `shown(name)` instead: valid UTF-8 without control characters, one text per name, and back to the
name's exact bytes with `name_bytes`.
"""

from __future__ import annotations

import os
import re
import unicodedata

# Characters shown as an escape: controls, invisible formatting (bidirectional overrides), line separators.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}
ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")

# The longest file name most Linux file systems take, in bytes.
NAME_MAX = 255


def shown(name: str | bytes | os.PathLike) -> str:
    """`name` with `\\` as `\\\\`, each byte that is not UTF-8 or is an ASCII control as `\\xNN`, and other
    hidden characters as `\\uNNNN`: `caf\\xe9.wav`, `a\\x0ab.wav`."""
    text = os.fsencode(name).decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_shown_character(c) for c in text)


def _shown_character(c: str) -> str:
    code = ord(c)
    if c == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape holds it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if unicodedata.category(c) in HIDDEN_CATEGORIES:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return c


def name_bytes(text: str) -> bytes:
    """The bytes of the name that `shown` turned into `text`."""
    parts, end = [], 0
    for match in ESCAPE.finditer(text):
        parts.append(text[end : match.start()].encode())
        escape = match.group(1)
        if escape == "\\":
            parts.append(b"\\")
        elif escape[0] == "x":
            parts.append(bytes([int(escape[1:], 16)]))
        else:
            parts.append(chr(int(escape[1:], 16)).encode())
        end = match.end()
    parts.append(text[end:].encode())
    return b"".join(parts)


def fitted(stem: str, suffix: str) -> str:
    """`stem + suffix`, the stem cut short (in bytes) so that the name fits in NAME_MAX bytes."""
    room = NAME_MAX - len(os.fsencode(suffix))
    return os.fsdecode(os.fsencode(stem)[:room]) + suffix
