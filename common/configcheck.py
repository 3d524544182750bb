"""Small helpers to validate TOML-like mappings with errors naming file, key path and reason."""

from __future__ import annotations

import enum
import os
import re
import string
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

from common import mqtt
from common.errors import ConfigError

KEY_BYTES: Final = 32
"""A link key is 256 bits (protocol.frame.KEY_SIZE)."""
KEY_HEX_DIGITS: Final = 2 * KEY_BYTES
_HEX: Final = frozenset(string.hexdigits)

NAME_RE: Final = re.compile(r"[a-z0-9_-]{1,32}")
TAG_RE: Final = re.compile(r"[0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{20}")
"""An NFC tag UID (ISO 14443-A: 4, 7 or 10 bytes) in hex, any case."""
"""Names of panels, sites, users, zones and cameras."""


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Final = _Missing.MISSING
"""Default for a required key."""


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse a TOML file; every failure is a ConfigError naming the file."""
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(name, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(name, "", "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        raise ConfigError(name, "", "not valid TOML: nested too deeply") from None


def describe(value: object) -> str:
    """A short name for the type of a value, as a TOML user would call it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


class Section:
    """One table being validated; remembers the keys read so that unknown keys are errors."""

    def __init__(self, data: Mapping[str, Any], file: str, path: str = "") -> None:
        self.data = data
        self.file = file
        self.path = path
        self._seen: set[str] = set()

    def where(self, key: str | None = None) -> str:
        """The full key path of ``key`` inside this section."""
        if key is None:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, reason: str) -> ConfigError:
        """A ConfigError for ``key`` of this section (or the section itself)."""
        return ConfigError(self.file, self.where(key), reason)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""
        return key in self.data

    def _raw(self, key: str, default: object) -> object:
        self._seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            raise self.error(key, "required")
        return default

    def get_str(
        self,
        key: str,
        default: str | _Missing = MISSING,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Collection[str] | None = None,
        what: str = "",
    ) -> str:
        """A string, optionally matching ``pattern`` (whole string) or one of ``choices``."""
        value = self._raw(key, default)
        return self._check_str(key, value, pattern, choices, what)

    def get_opt_str(
        self,
        key: str,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Collection[str] | None = None,
        what: str = "",
    ) -> str | None:
        """A string, or None when the key is absent."""
        value = self._raw(key, None)
        if value is None:
            return None
        return self._check_str(key, value, pattern, choices, what)

    def _check_str(
        self,
        key: str,
        value: object,
        pattern: re.Pattern[str] | None,
        choices: Collection[str] | None,
        what: str,
    ) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {describe(value)}")
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(sorted(choices))}, not {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"must be {what or 'of the form ' + pattern.pattern}")
        return value

    def get_int(
        self,
        key: str,
        default: int | _Missing = MISSING,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """An integer within bounds (booleans are refused)."""
        value = self._raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {describe(value)}")
        self._check_range(key, value, minimum, maximum)
        return value

    def get_number(
        self,
        key: str,
        default: float | _Missing = MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """A number (integer or float) within bounds."""
        value = self._raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {describe(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.error(key, "must be a finite number")
        self._check_range(key, value, minimum, maximum)
        return float(value)

    def _check_range(
        self, key: str, value: float, minimum: float | None, maximum: float | None
    ) -> None:
        if minimum is not None and minimum == maximum and value != minimum:
            raise self.error(key, f"must be {minimum:g}, not {value:g}")
        if minimum is not None and maximum is not None and not minimum <= value <= maximum:
            raise self.error(key, f"must be between {minimum:g} and {maximum:g}, not {value:g}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum:g}, not {value:g}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum:g}, not {value:g}")

    def get_bool(self, key: str, default: bool | _Missing = MISSING) -> bool:
        """A boolean."""
        value = self._raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {describe(value)}")
        return value

    def get_str_list(
        self,
        key: str,
        default: list[str] | _Missing = MISSING,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Collection[str] | None = None,
        what: str = "",
        unique: bool = True,
    ) -> list[str]:
        """A list of strings; each element is checked like ``get_str``; duplicates refused."""
        value = self._raw(key, default)
        if not isinstance(value, list | tuple):
            raise self.error(key, f"must be a list of strings, not {describe(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            item_key = f"{key}[{i}]"
            out.append(self._check_str(item_key, item, pattern, choices, what))
            if unique and out[-1] in out[:-1]:
                raise self.error(item_key, f"{out[-1]!r} is listed twice")
        return out

    def get_section(self, key: str, *, required: bool = False) -> Section:
        """A sub-table; an absent optional one reads as empty."""
        value = self._raw(key, MISSING if required else {})
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, not {describe(value)}")
        return Section(value, self.file, self.where(key))

    def get_sections(self, key: str) -> list[Section]:
        """An array of tables (``[[key]]``); absent reads as empty."""
        value = self._raw(key, [])
        if not isinstance(value, list | tuple):
            raise self.error(key, f"must be a list of tables, not {describe(value)}")
        out: list[Section] = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.error(f"{key}[{i}]", f"must be a table, not {describe(item)}")
            out.append(Section(item, self.file, self.where(f"{key}[{i}]")))
        return out

    def get_path(
        self, key: str, base: Path, *, must_exist: bool = True, default: str | None = None
    ) -> Path | None:
        """A file path, relative to ``base`` unless absolute; None when absent and no default."""
        value = self.get_opt_str(key)
        if value is None:
            if default is None:
                return None
            value = default
        if not value:
            raise self.error(key, "must not be empty")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base / path
        if must_exist and not path.is_file():
            raise self.error(key, f"no such file: {path}")
        return path

    def get_store_path(self, key: str, base: Path, default: str | None = None) -> Path | None:
        """A database file that may not exist yet, in a folder that must (a typo is an error)."""
        path = self.get_path(key, base, must_exist=False, default=default)
        if path is not None and not path.parent.is_dir():
            raise self.error(
                key,
                f"the folder {path.parent} does not exist "
                "(create it; the systemd unit's StateDirectory= does on a Pi)",
            )
        return path

    def finish(self) -> None:
        """Raise for the first key that was never read (an unknown key)."""
        unknown = sorted(k for k in self.data if k not in self._seen)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise self.error(unknown[0], f"unknown key (expected one of: {known})")


SECRET_MODE_MASK: Final = 0o077
"""Permission bits a secret file must not have: any access by group or others."""


def check_secret_mode(section: Section, key: str, path: Path) -> None:
    """Refuse a secret file that group or others may read or write (as ssh does)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # the read that follows names the problem
    if mode & SECRET_MODE_MASK:
        raise section.error(
            key,
            f"{path} is accessible by others (mode {mode & 0o777:04o}); "
            f"a secret must be owner-only: chmod 600 {path}",
        )


def read_secret_file(section: Section, key: str, base: Path) -> str:
    """The first line of an owner-only secret file named by ``key`` (relative to ``base``)."""
    path = section.get_path(key, base)
    if path is None:
        raise section.error(key, "required")
    check_secret_mode(section, key, path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise section.error(key, f"cannot read {path}: {exc}") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise section.error(key, f"{path} is empty")
    return value


def parse_hex_key(section: Section, key: str, text: str) -> bytes:
    """A 256-bit key written as 64 hex digits (``parse_key``'s rules)."""
    return parse_key(text, file=section.file, key=section.where(key))


def parse_broker_url(section: Section, key: str, url: str) -> tuple[str, int, bool]:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` -> (host, port, tls)."""
    try:
        return mqtt.parse_broker_url(url, file=section.file, key=section.where(key))
    except ConfigError as exc:
        raise section.error(key, exc.reason) from None


def broker_section(sec: Section, base: Path, default_url: str) -> mqtt.BrokerConfig:
    """A broker table: ``broker`` URL, ``protocol``, username/password(_file), TLS ca/cert/key.

    The panel's ``[mqtt]`` and the hub's ``[local]`` / ``[cloud]`` share it; the caller
    reads its own extra keys first and finishes nothing: this finishes the section.
    """
    host, port, tls = parse_broker_url(sec, "broker", sec.get_str("broker", default_url))
    # MQTT 5 lets the client announce its maximum packet size; 3.1.1 for brokers without it.
    mqtt5 = sec.get_str("protocol", "5", choices=("5", "3.1.1")) == "5"
    username = sec.get_opt_str("username")
    if sec.has("password") and sec.has("password_file"):
        raise sec.error("password_file", "give password or password_file, not both")
    password = sec.get_opt_str("password")
    if sec.has("password_file"):
        password = read_secret_file(sec, "password_file", base)
    if password is not None and username is None:
        raise sec.error("password" if sec.has("password") else "password_file", "needs a username")
    for k in ("ca", "cert", "key"):
        if sec.has(k) and not tls:
            raise sec.error(k, "TLS files need an mqtts:// broker")
    files = {k: sec.get_path(k, base) for k in ("ca", "cert", "key")}
    if files["key"] is not None:
        check_secret_mode(sec, "key", files["key"])
    if (files["cert"] is None) != (files["key"] is None):
        missing = "key" if files["key"] is None else "cert"
        raise sec.error(missing, "cert and key go together")
    sec.finish()
    return mqtt.BrokerConfig(
        host, port, tls, username, password, files["ca"], files["cert"], files["key"], mqtt5
    )


def check_device_url(
    section: Section, key: str, url: str, schemes: Collection[str] | None = None
) -> str:
    """A device URL ``scheme:rest``; with ``schemes`` the scheme must be one of them."""
    scheme, sep, _rest = url.partition(":")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise section.error(key, f"must be a device URL such as 'sim:', not {url!r}")
    if schemes is not None and scheme not in schemes:
        raise section.error(
            key, f"unknown device URL scheme {scheme + ':'!r} (known: {', '.join(schemes)})"
        )
    return url


def parse_key(text: str, *, file: str, key: str) -> bytes:
    """The 32 key bytes written in ``text``; ``ConfigError`` naming ``file`` and ``key`` if bad.

    The error never repeats the text: a wrong key is still a secret.
    """
    if not isinstance(text, str):
        raise ConfigError(file, key, f"must be a string of {KEY_HEX_DIGITS} hex digits")
    value = text.strip()
    if len(value) != KEY_HEX_DIGITS or not _HEX.issuperset(value):
        raise ConfigError(
            file,
            key,
            f"must be {KEY_HEX_DIGITS} hex digits (a 256-bit key; `centinela keygen` prints one), "
            f"got {len(value)} characters",
        )
    raw = bytes.fromhex(value)
    if len(set(raw)) == 1:
        raise ConfigError(file, key, "is a placeholder (one byte repeated); use `centinela keygen`")
    return raw
