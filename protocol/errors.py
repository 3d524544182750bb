"""Errors of the panel <-> hub wire; decoders raise nothing but ``ProtocolError`` subclasses."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error the wire layer raises."""


class BadMagic(ProtocolError):
    """The frame does not start with the protocol's magic bytes."""


class UnsupportedVersion(ProtocolError):
    """The frame names a protocol version this code does not speak."""


class FrameTooLarge(ProtocolError):
    """The frame (or the frame a message would need) is over the size cap."""


class Truncated(ProtocolError):
    """The frame ends before its header or its declared payload does."""


class MalformedHeader(ProtocolError):
    """A header field is out of range: panel id, direction, flags, seq or length."""


class AuthenticationFailed(ProtocolError):
    """The AEAD tag does not verify: wrong key, or a byte of the frame was changed."""


class UnknownKey(AuthenticationFailed):
    """No key is known for the frame's panel id and key id."""


class Replay(ProtocolError):
    """The frame's sequence number was already accepted or is below the replay window."""


class RetiredEpoch(Replay):
    """An authentic frame from a sender epoch the receiver has seen replaced (an old store)."""


class StaleEpoch(ProtocolError):
    """An authentic frame made for another epoch of this receiver (or before the sender knew it).

    ``header`` is the frame's (authenticated) header: the receiver may answer it so that
    the sender learns its current epoch.
    """

    def __init__(self, message: str, header: object) -> None:
        super().__init__(message)
        self.header = header


class WrongPeer(ProtocolError):
    """The frame is authentic but addressed to another panel id or travels the other way."""


class ClockSkew(ProtocolError):
    """The frame's timestamp is outside the receiver's accepted clock window."""


class UnknownType(ProtocolError):
    """The message type id is not in this protocol version's table (or not in this direction)."""


class MalformedPayload(ProtocolError):
    """The decrypted payload does not match its message schema."""


class StreamError(ProtocolError):
    """A serial-stream chunk failed COBS decoding, its CRC or the length cap."""


class SequenceExhausted(ProtocolError):
    """The sender has used every u32 sequence number under its key: rotate the key."""


class EncodeError(ProtocolError, ValueError):
    """A message or header cannot be put on the wire (a value out of range, too long)."""
