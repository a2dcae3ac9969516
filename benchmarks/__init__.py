"""Benchmarks of fraudops: `python -m benchmarks` (or `make bench`) writes docs/benchmarks.md.

Every measurement runs in a fresh subprocess (`benchmarks.worker`) that reports its own wall
time, CPU time and peak memory. The report is built from a list of sections
(`benchmarks.sections.SECTIONS`); a run of some sections keeps the others in the file.
"""
