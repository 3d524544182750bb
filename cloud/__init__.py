"""The customer area and app API: ``centinela cloud`` (CONTRACT §7)."""
