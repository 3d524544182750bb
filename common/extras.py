"""Optional dependencies: which extra of the package brings each one (pyproject.toml).

A hub host installs ``centinela[hub]``, a panel host ``centinela[panel]``, a
developer ``centinela[dev]``. Code that needs an optional module asks for it
with ``require``; a missing one is one line naming the extra to install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Final

from common.errors import UsageError

EXTRAS: Final[Mapping[str, tuple[str, str]]] = {
    # import name: (distribution, extra)
    "serial": ("pyserial", "panel"),
    "serial_asyncio_fast": ("pyserial-asyncio-fast", "panel"),
    "usb": ("pyusb", "panel"),
    "nfc": ("nfcpy", "panel"),
    "ndef": ("ndeflib", "panel"),
    "gpiozero": ("gpiozero", "panel"),
    "smbus2": ("smbus2", "panel"),
    "av": ("av", "panel"),
    "PIL": ("Pillow", "sim"),
    "prompt_toolkit": ("prompt_toolkit", "sim"),
    "amqtt": ("amqtt", "sim"),
    "yaml": ("PyYAML", "sim"),
    "starlette": ("starlette", "cloud"),
    "uvicorn": ("uvicorn", "cloud"),
    "jinja2": ("Jinja2", "cloud"),
    "multipart": ("python-multipart", "cloud"),
    "argon2": ("argon2-cffi", "cloud"),
    "babel": ("Babel", "cloud"),
    "psycopg": ("psycopg", "cloud"),
    "psycopg_pool": ("psycopg-pool", "cloud"),
}


class MissingDependency(UsageError):
    """An optional module is not installed: ``nfcpy is not installed; install centinela[panel]``."""

    def __init__(self, module: str, where: str = "") -> None:
        self.module = module
        self.distribution, self.extra = EXTRAS[module]
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}{self.distribution} is not installed; install centinela[{self.extra}]"
        )


def installed(module: str) -> bool:
    """Whether ``module`` (a top-level import name) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook refused it, or a broken entry
        return False


def missing(*modules: str, where: str = "") -> MissingDependency | None:
    """The MissingDependency for the first of ``modules`` that is not installed, if any."""
    for module in modules:
        if not installed(module):
            return MissingDependency(module, where)
    return None


def require(*modules: str, where: str = "") -> None:
    """Raise MissingDependency for the first of ``modules`` that is not installed.

    ``where`` (e.g. ``panel.toml: devices.nfc``) says what needs it.
    """
    error = missing(*modules, where=where)
    if error is not None:
        raise error


def missing_from(exc: ModuleNotFoundError) -> MissingDependency | None:
    """The MissingDependency behind a failed import of an optional module, else None."""
    top = (exc.name or "").partition(".")[0]
    return MissingDependency(top) if top in EXTRAS else None
