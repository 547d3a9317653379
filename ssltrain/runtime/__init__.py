"""Run plumbing: processes (dist.py), checkpoints and resume (checkpoint.py, atomic.py),
and rank-0 logging (run_logger.py)."""
