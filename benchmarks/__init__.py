"""Benchmark suite: navigator against nginx and Caddy on the same machine, same run.

Entry point: `python benchmarks/run.py` (or `make bench`). Not imported by the server.
"""
