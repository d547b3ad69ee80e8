"""Benchmarks: the project side by side with the naive reference and the Redis ceiling.

Run with `make bench`; results go to benchmarks/RESULTS.md. Benchmarks are not tests.
"""
