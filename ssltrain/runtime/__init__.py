"""Run plumbing: processes (dist.py), the arithmetic they compute in (precision.py),
checkpoints and resume (checkpoint.py, atomic.py), and rank-0 logging (run_logger.py)."""
