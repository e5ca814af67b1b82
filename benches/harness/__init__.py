"""The benchmark harness behind benches/bench_cache.py, one concern per module.

A module imports only modules listed above it, so no two import each other:

- settings: where a run writes, how long it samples (full or quick);
- peers: one adapter per library;
- results: a case's cells (status and samples per peer);
- functions: a fresh function per case and repeat;
- timing: the clock, calibration, interleaved sampling;
- cases_per_call (1-4, 7), cases_threads (5, 6), cases_decoration (8),
  cases_large_arguments (9a-9d), cases_in_app (10a, 10b): the cases;
- machine: the CPU and the measured fastcache build;
- targets: the issue's targets, met or missed;
- report (markdown, JSON) and chart (PNG): the outputs.
"""
