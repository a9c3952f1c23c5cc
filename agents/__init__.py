"""PPO training (stable-baselines3), heuristic baselines, the evaluation harness and
optuna tuning (issue 5 fills this package)."""
