"""construct building blocks of the message tables: compiled structs, prefixed fields, codes."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final, Generic, TypeVar

from construct import Construct, Container, SizeofError, Struct, stream_read, stream_write

from protocol.errors import EncodeError, MalformedPayload
from protocol.messages import Message

E = TypeVar("E", bound=enum.Enum)

Wire = dict[str, Any]
"""The field values handed to a schema's builder."""
Parsed = Mapping[str, Any]
"""What a schema's parser returns (a construct Container)."""


class Codes(Generic[E]):
    """An explicit enum <-> wire int table (codes from 1; append only, never reuse a code)."""

    def __init__(self, members: Sequence[E]) -> None:
        self.encode: Final[dict[E, int]] = {m: i for i, m in enumerate(members, start=1)}
        self.decode: Final[dict[int, E]] = {i: m for m, i in self.encode.items()}
        self.enum: Final = type(members[0])

    def to_wire(self, member: E) -> int:
        """The wire code of ``member``."""
        try:
            return self.encode[member]
        except KeyError:
            raise EncodeError(f"{member!r} has no wire code") from None

    def from_wire(self, code: int) -> E:
        """The member for a wire code."""
        try:
            return self.decode[code]
        except KeyError:
            raise MalformedPayload(f"unknown {self.enum.__name__} code {code}") from None

    def opt_to_wire(self, member: E | None) -> int | None:
        """The wire code of an optional member."""
        return None if member is None else self.to_wire(member)

    def opt_from_wire(self, code: int | None) -> E | None:
        """The member of an optional wire code."""
        return None if code is None else self.from_wire(code)


def prefixed(obj: Any, width: int, text: bool) -> bytes:
    """``obj`` (str as UTF-8, or bytes) after its big-endian length in ``width`` bytes."""
    data = obj.encode() if text else bytes(obj)
    return len(data).to_bytes(width, "big") + data


# construct has no types: Construct is Any to mypy, and subclassing Any needs the ignore.
class LengthPrefixed(Construct):  # type: ignore[misc]
    """Bytes (or UTF-8 text) after a big-endian length of ``width`` bytes; compiles both ways.

    construct's ``PascalString`` and ``Prefixed`` compile their parsers only; this
    one also compiles the builder, the hot half on the panel. Compiled parsing
    does not check short reads: ``CompiledStruct.parse_exact`` catches them.
    """

    def __init__(self, width: int, *, text: bool) -> None:
        super().__init__()
        self.width = width
        self.text = text

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        size = int.from_bytes(stream_read(stream, self.width, path), "big")
        data = stream_read(stream, size, path)
        return data.decode() if self.text else data

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        data = prefixed(obj, self.width, self.text)
        stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise SizeofError("a length-prefixed field has no fixed size", path=path)

    def _emitparse(self, code: Any) -> str:
        read = f"io.read(int.from_bytes(io.read({self.width}), 'big'))"
        return f"{read}.decode()" if self.text else read

    def _emitbuild(self, code: Any) -> str:
        code.append("from protocol.schema import prefixed")
        return f"(io.write(prefixed(obj, {self.width}, {self.text})), obj)[1]"


# The outermost context construct's compiled functions expect; they never write to it.
_PARSE_CONTEXT: Final = Container(
    _params=Container(), _parsing=True, _building=False, _sizing=False
)
_BUILD_CONTEXT: Final = Container(
    _params=Container(), _parsing=False, _building=True, _sizing=False
)


class CompiledStruct:
    """A construct ``Struct`` compiled once, called without construct's per-call set-up."""

    __slots__ = ("_build", "_parse", "struct")

    def __init__(self, struct: Struct) -> None:
        self.struct: Final = struct
        compiled = struct.compile()
        self._parse: Final[Callable[[BytesIO, Any], Parsed]] = compiled.parsefunc
        self._build: Final[Callable[[Any, BytesIO, Any], Any]] = compiled.buildfunc

    def build(self, obj: Mapping[str, Any]) -> bytes:
        """The bytes of ``obj``; raises construct's, struct's or encoding errors."""
        stream = BytesIO()
        self._build(obj, stream, _BUILD_CONTEXT)
        return stream.getvalue()

    def parse_stream(self, stream: BytesIO) -> Parsed:
        """Parse from ``stream`` (the caller has checked it holds enough bytes)."""
        return self._parse(stream, _PARSE_CONTEXT)

    def parse_exact(self, data: bytes, what: str) -> Parsed:
        """Parse ``data``, which must hold exactly one value: ``MalformedPayload`` otherwise."""
        # The sentinel byte makes a read past the end visible: the compiled
        # parser does not check short reads, but the position then ends past it.
        stream = BytesIO(data + b"\x00")
        result = self._parse(stream, _PARSE_CONTEXT)
        end = stream.tell()
        if end > len(data):
            raise MalformedPayload(f"{what} payload ends inside a field")
        if end < len(data):
            raise MalformedPayload(f"{len(data) - end} bytes after the {what}")
        return result


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One message type of one protocol version: id, dataclass, schema and converters."""

    type_id: int
    cls: type[Any]
    schema: CompiledStruct
    to_wire: Callable[[Any], Wire]
    from_wire: Callable[[Parsed], Message]
    from_panel: bool  # may travel panel -> hub
    from_hub: bool  # may travel hub -> panel
