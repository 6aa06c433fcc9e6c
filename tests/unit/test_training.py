"""Training from the log: what it publishes, and the quality gate that keeps the previous model."""

from __future__ import annotations

from domain.events import InteractionRecorded, from_unix
from movieaugur import operations
from offline.ingest.sample import generate_sample
from tests.conftest import settle


async def test_training_publishes_through_the_log(client, container) -> None:
    sample = generate_sample(users=200, movies=150, series=60, seed=3)
    await container.log.append(sample.catalog)
    await container.log.append(sample.interactions)
    report = await operations.train(container, time_budget=3)
    assert report.published, report.reason
    assert report.metrics["ndcg@100"] > report.baseline["ndcg@100"]
    assert (container.settings.models_dir / "default" / report.version / "meta.json").is_file()
    await settle(container)
    body = await (await client.get("/v1/users/user-1/recommendations?limit=10")).json()
    assert body["model_version"] == report.version and body["fallback"] is None
    model = await (await client.get(f"/v1/models/default@{report.version}")).json()
    assert model["algorithm"] == report.algorithm and model["metrics"]["holdout"] == report.metrics


async def test_quality_gate_keeps_the_previous_model(container) -> None:
    """Taste-free data: every regular user watched the same 12 hits, others one title each from a
    long tail. Popularity ranks each user's held-out hits first (a perfect score); a model can at
    best tie, and nothing may be published."""
    events = [
        InteractionRecorded.new(event_id=f"tail{n}", timestamp=from_unix(1_700_000_000), user_id=f"t{n}",
                                item_type="movie", item_id=f"tail{n}")
        for n in range(100)
    ]
    for user in range(300):
        for item in range(12):
            events.append(InteractionRecorded.new(
                event_id=f"g{user}-{item}", timestamp=from_unix(1_700_000_000), user_id=f"g{user}",
                item_type="movie", item_id=f"i{item}",
            ))
    await container.log.append(events)
    report = await operations.train(container, time_budget=3)
    assert report.baseline["ndcg@100"] > 0.99
    assert not report.published
    assert "does not beat popularity" in report.reason and "previous model stays" in report.reason
    assert [e async for e in container.log.scan("recommendations")] == []


def test_the_gate_ranks_every_held_out_user_up_to_its_cap_then_a_seeded_sample() -> None:
    import numpy as np
    import scipy.sparse as sp

    from offline.training.pipeline import gate_users

    held = sp.csr_matrix(np.eye(50, 10, dtype=np.float32))  # users 0..9 hold something out
    assert gate_users(held, seed=0, cap=20).tolist() == list(range(10))
    sample = gate_users(held, seed=0, cap=4)
    assert len(sample) == 4 and set(sample) <= set(range(10)) and (np.diff(sample) > 0).all()
    assert sample.tolist() == gate_users(held, seed=0, cap=4).tolist()
    assert any(gate_users(held, seed=s, cap=4).tolist() != sample.tolist() for s in range(1, 5))
