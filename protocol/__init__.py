"""The panel <-> hub wire: frames, messages, session, stream framing."""
