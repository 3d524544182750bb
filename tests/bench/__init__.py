"""`make bench`: every benchmark with a same-run baseline; see docs/performance.md."""
