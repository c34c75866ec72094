"""ser-live's real-time performance benchmarks: ``python -m benchmarks.run [--quick]``."""
