"""Benchmarks: scripts that print figures and assert nothing (the README's Speed section).

Run from the repository root, as `python benchmarks/<name>.py` or `python -m benchmarks.<name>`:

- `analysis` — `analyze()` against the bare encoders and a late-fusion baseline (the shipped
  default, paper size, compact), Whisper transcription, reference-bank search;
- `cold_start` — a fresh process: import, load the checkpoint and bank, first analysis;
- `training` — training throughput and the encoders' share of a step;
- `api_json` — the `/analyze` answer through `gr.api` against `gr.JSON`, per request;
- `ui` — server start, then click on Analyze → the figures drawn in Chromium;
- `load` — concurrent API clients, then a long sequential run for leaks;
- `burst` — a classroom: 30 clients click Analyze at once.

Not installed with the package (pyproject's packages are `mgcma` and `train`). The served app is
started and driven through demo/harness.py, as the tests do; no test imports a benchmark.
"""
