"""The hub: panel link <-> cloud JSON API."""
