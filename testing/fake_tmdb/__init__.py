"""A local TMDB v3 over real sockets (server: ``FakeTmdbServer``, ``serve_in_thread``), serving a
deterministic catalog (catalog).

Standalone: ``python -m testing.fake_tmdb.server --port 8089 --api-key k``.
"""
