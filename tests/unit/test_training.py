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

    counts = [5] * 10 + [4] * 40  # users 0..9 have enough entries to hold something out
    X = sp.csr_matrix(np.array([[1.0] * c + [0.0] * (10 - c) for c in counts], dtype=np.float32))
    assert gate_users(X, seed=0, cap=20).tolist() == list(range(10))
    sample = gate_users(X, seed=0, cap=4)
    assert len(sample) == 4 and set(sample) <= set(range(10)) and (np.diff(sample) > 0).all()
    assert sample.tolist() == gate_users(X, seed=0, cap=4).tolist()
    assert any(gate_users(X, seed=s, cap=4).tolist() != sample.tolist() for s in range(1, 5))


async def test_a_sampled_gate_publishes_the_gated_model_without_a_refit(client, container, monkeypatch) -> None:
    """Where the gate's users hold out a small share of the data, the model it measured is the one
    published (no second fit); where every user held something out, it is refit on everything."""
    from offline.training import pipeline

    sample = generate_sample(users=200, movies=150, series=60, seed=3)
    await container.log.append(sample.catalog)
    await container.log.append(sample.interactions)
    whole = await operations.train(container, time_budget=0)
    assert whole.published and whole.refit and whole.held_out_share > pipeline.REFIT_ABOVE_HELD_OUT_SHARE
    monkeypatch.setattr(pipeline, "GATE_USERS", 12)
    sampled = await operations.train(container, time_budget=0)
    assert sampled.published, sampled.reason
    assert sampled.gate_users == 12 and not sampled.refit
    assert 0 < sampled.held_out_share <= pipeline.REFIT_ABOVE_HELD_OUT_SHARE
    assert sampled.metrics["ndcg@100"] > sampled.baseline["ndcg@100"]
    await settle(container)
    body = await (await client.get("/v1/users/user-1/recommendations?limit=10")).json()
    assert body["model_version"] == sampled.version and len(body["items"]) == 10
    model = await (await client.get(f"/v1/models/default@{sampled.version}")).json()
    assert model["params"]["refit"] is False and model["params"]["gate_users"] == 12


def test_refreshed_users_see_their_whole_history() -> None:
    """A user whose last five items were held out of the fit: re-solving their factors from the
    whole row ranks those items as the user's own, as a fit that had seen them would."""
    import numpy as np
    import scipy.sparse as sp

    from offline.training.models import ALS

    rng = np.random.default_rng(0)
    rows = [rng.choice(10, 6, replace=False) if u % 2 else 10 + rng.choice(10, 6, replace=False) for u in range(60)]
    whole = sp.lil_matrix((60, 20), dtype=np.float32)
    for u, items in enumerate(rows):
        whole[u, items] = 1.0
    whole[0, :] = 0.0
    whole[0, [0, 1, 2, 3, 4, 5]] = 1.0  # user 0 joins the first taste (items 0..9)
    whole[0, [10]] = 1.0
    fitted = whole.tocsr().copy()
    fitted[0, [0, 1, 2, 3, 4, 5]] = 0.0  # held out: the fit sees user 0 with item 10 only
    fitted.eliminate_zeros()
    model = ALS(factors=8, regularization=0.1, alpha=10.0, iterations=20).fit(fitted)
    first_taste = slice(0, 10)
    before = model.score(np.array([0]), fitted)[0]
    others = model.user_factors[1:].copy()
    model.refresh_users(np.array([0]), whole.tocsr())
    after = model.score(np.array([0]), whole.tocsr())[0]
    assert before[first_taste].mean() < before[10:].mean()
    assert after[first_taste].mean() > after[10:].mean()
    assert (model.user_factors[1:] == others).all()


async def test_with_no_lists_published_each_user_is_ranked_on_request(client, container) -> None:
    """MOVIEAUGUR_RECOMMENDATIONS_PER_USER=0: no per-user lists in the log (similar items still are);
    a user's recommendations come from the new model version by fold-in."""
    from domain.configuration import weights_of
    from domain.events import RecommendationsPublished, SimilarItemsPublished
    from offline.training.pipeline import train_and_publish

    sample = generate_sample(users=200, movies=150, series=60, seed=3)
    await container.log.append(sample.catalog)
    await container.log.append(sample.interactions)
    report = await train_and_publish(container.log, weights_of(container.settings), time_budget=0,
                                     recommendations_per_user=0, models_dir=container.settings.models_dir)
    assert report.published, report.reason
    published = [e async for e in container.log.scan("recommendations")]
    assert not any(isinstance(e.event, RecommendationsPublished) for e in published)
    assert any(isinstance(e.event, SimilarItemsPublished) for e in published)
    await settle(container)
    body = await (await client.get("/v1/users/user-1/recommendations?limit=10")).json()
    assert body["model_version"] == report.version and body["fallback"] is None and len(body["items"]) == 10
    seen = {(e.item_type, e.item_id) for e in sample.interactions if e.user_id == "user-1"}
    assert not seen & {(item["object_type"], item["id"]) for item in body["items"]}
