"""Run plumbing: processes (dist.py; SLURM tasks' ranks in slurm.py), the arithmetic they compute in (precision.py), who owns
a run folder (run_dir.py) and what it holds (run_files.py), checkpoints and resume (checkpoint.py, atomic.py), stop requests
(signals.py), what the user watches (progress.py, log_file.py) and rank-0 TensorBoard
logging (run_logger.py), and a folder of extracted features that appears whole
(feature_folder.py)."""
