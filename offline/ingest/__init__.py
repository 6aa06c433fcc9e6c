"""Events into the log: MovieLens import (movielens), the demo's synthetic service (sample), TMDB
collection runs (collectors, over the client in ``offline.ingest.tmdb``). Imports only domain and
kernel."""
