"""Evaluation of a (pre)trained encoder: knn, linear, finetune, none (registered in EVALUATORS)."""
