"""Benchmarks: every figure beside a reference measured in the same run on the same machine.

Each stage module exposes ``run(env, quick) -> list[Row]`` and runs alone as
``python -m benchmarks.<stage>``; ``python -m benchmarks`` runs them all but ``scaleout``, which
needs the cluster topology (``make up TOPOLOGY=cluster``; ``make bench-scaleout``).
"""
