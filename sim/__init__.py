"""Simulated site, scenario runner and cloud stand-in."""
