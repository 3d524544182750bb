"""Reporting to an alarm receiving centre in SIA DC-09 (docs/arc.md)."""
