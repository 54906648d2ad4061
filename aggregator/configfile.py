"""The configuration file on disk, edited safely: validated first, then replaced atomically.

A shell around the pure edits of `sources`: read the text, let an edit make the new
text, check it with `config.parse_config` exactly as the daemon will, and only then
replace the file (a temporary file in the same folder, fsync, rename, the original
mode and owner kept), so no reader ever sees half a file and a failed check leaves
the file byte for byte as it was. Errors point at lines of the file as it is on disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aggregator.atomicfile import write_atomic
from aggregator.config import Config, ConfigError, parse_config
from aggregator.sources import original_line

_BOM = "\ufeff"
_LOCATED = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<rest>.*)$", re.S)


class SaveError(Exception):
    """The edited text was not saved; `errors` say why, one FILE:LINE line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ConfigText:
    """The file as read: its text (without a byte order mark) and its exact bytes."""

    path: Path
    text: str
    raw: bytes

    @property
    def bom(self) -> bool:
        return self.raw.startswith(_BOM.encode())


def read(path: Path) -> ConfigText:
    """The file's text; SaveError when it cannot be read as UTF-8 text."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SaveError([f"{path}: cannot read: {error.strerror or error}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SaveError(
            [f"{path}: cannot read: not UTF-8 text (byte {error.start} is not valid)"]
        ) from None
    return ConfigText(path, text, raw)


def check(current: ConfigText, new_text: str) -> Config:
    """The configuration `new_text` would be; SaveError with every problem otherwise,
    each at its line in the file as it is now."""
    try:
        return parse_config(new_text, current.path)
    except ConfigError as error:
        raise SaveError([_locate(line, current, new_text) for line in error.errors]) from None


def save(current: ConfigText, new_text: str) -> Config:
    """Check `new_text`, then put it in place of the file; SaveError leaves the file as is.

    Also refused: a file changed by someone else since it was read (its edit would be
    lost).
    """
    config = check(current, new_text)
    if new_text == current.text:
        return config
    target = current.path.resolve()  # a symlinked file is replaced where it really lives
    try:
        on_disk = target.read_bytes()
    except OSError as error:
        raise SaveError([f"{current.path}: cannot read: {error.strerror or error}"]) from None
    if on_disk != current.raw:
        raise SaveError(
            [f"{current.path}: changed by someone else meanwhile; nothing saved, try again"]
        )
    data = ((_BOM if current.bom else "") + new_text).encode("utf-8")
    try:
        write_atomic(target, data, keep_mode_and_owner=True)
    except OSError as error:
        raise SaveError([f"{current.path}: cannot write: {error.strerror or error}"]) from None
    return config


def _locate(error: str, current: ConfigText, new_text: str) -> str:
    match = _LOCATED.match(error)
    if match is None:
        return error
    line, unchanged = original_line(current.text, new_text, int(match["line"]))
    where = "" if unchanged else "(a line this change writes) "
    return f"{match['file']}:{line}: {where}{match['rest']}"
