"""The benchmark suite (`make bench`): speed figures as ratios measured side by side.

Each module here exposes ``records() -> list[Record]``; ``python -m benchmarks`` runs them
all, writes ``benchmarks/results.json`` and prints a markdown table. Nothing here is a test:
timings are noisy on shared machines, so no test asserts one.
"""
