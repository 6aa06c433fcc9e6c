"""Training and publishing: the whole log -> a model version -> recommendations in the log.

- pipeline: ``train_and_publish`` (hold-out, quality gate, publish);
- interaction_matrix: the weighted user x item matrix read from the log;
- models: the recommenders (models.registry builds and loads them by kind);
- tuning, selection: which model and hyperparameters, chosen on a validation split of training data;
- holdout, metrics: contract §5's per-user split and ranking metrics (offline.evaluation uses them too);
- similar_items: "more like this";
- fold_in: one user's scores from their current interactions with a saved version, without
  retraining, and the serving artifacts it needs (query processes and the evaluation run it);
- content: the content model over catalog metadata (TF-IDF), for items without interactions.

Imports nothing from offline.evaluation (which imports from here).
"""
