"""Contract §5 on a MovieLens folder: the protocol (protocol), the ratings CSV reader
(ratings_matrix) and the line-up `movieaugur evaluate` compares (compare_models); the fold-in and
cold-item protocols (fresh_protocols, `movieaugur evaluate --protocol foldin|cold`). Imports models,
the split rule and the metrics from offline.training, never the other way round."""
