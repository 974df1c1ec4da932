"""Our own checks: the execution-engine and app benchmarks, and the calibration of the statistics."""
