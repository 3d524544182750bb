"""The panel <-> hub wire (docs/protocol.md).

``messages`` the typed vocabulary; ``v1`` + ``schema`` the message table of
protocol version 1 (construct); ``codec`` payload <-> dataclass; ``frame`` the
sealed envelope; ``session`` sequence numbers, replay window, key rotation;
``stream`` COBS + CRC framing for serial lines; ``keys`` panel keys;
``errors`` the one exception family decoders raise.
"""
