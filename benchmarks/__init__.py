"""Benchmarks of stagegen's generated code (run: python -m benchmarks)."""
