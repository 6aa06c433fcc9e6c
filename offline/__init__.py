"""Offline jobs, one subpackage each; they import one way: evaluation -> training, ingest on its own.

- :mod:`offline.ingest` — events into the log: MovieLens import, the demo's sample generator,
  TMDB collection (the TMDB client is :mod:`offline.ingest.tmdb`).
- :mod:`offline.training` — the log -> a model version -> recommendations published back into the
  log: interaction matrix, models, tuning and selection, the held-out split and ranking metrics of
  contract §5 (the quality gate and the tuner measure with them), similar items.
- :mod:`offline.evaluation` — contract §5 on a MovieLens folder (`movieaugur evaluate`): imports
  the models, split and metrics from training; training never imports evaluation. Also the fold-in
  and cold-item protocols (fresh_protocols).
- :mod:`offline.serving` — the model runtime of a query process (fold-in, content index, dislike
  rule), injected into the query service by ``movieaugur.app`` behind the ``queries.fresh.ModelRuntime``
  port; it imports training, nothing imports it but the composition root (and benchmarks).

All three may import ``domain``, ``kernel`` and ``projections``; never ``movieaugur``, ``commands`` or
``queries``. Test fakes (a local TMDB) live in the top-level ``testing`` package.
"""
