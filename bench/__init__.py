"""Benchmarks (not tests): `python -m bench` measures the service and rewrites docs/performance.md.

Method and targets: PERFORMANCE.md of the specification. Every figure is measured side by side
with a bare Flask route served by the same gunicorn configuration, and quoted as a ratio.
"""
