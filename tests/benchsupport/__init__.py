"""The parts of the benchmark (``tests/bench.py``): moto in a process of its own that the
benchmark fills directly, the harness that runs the collector as a real process and measures
it, and a model of the old module's per-event work for its CPU figure."""
