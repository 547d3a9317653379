"""Evaluation of a (pre)trained encoder: knn, linear, finetune, kmeans, retrieval, none (registered in EVALUATORS)."""
