"""FerretDB on the stack's own PostgreSQL (MOVIEAUGUR_FERRETDB_BACKEND=postgresql, the default).

Proves what infra/local/postgres.py and the FerretDB build patch claim: FerretDB really stores in
PostgreSQL; every collection table gets the GIN index on `_id` (so `{_id: x}` is an index scan);
a 2,000-document insert reads back exactly by `$in`; and an update command with many matched
statements (what the Kafka Connect sink sends when it re-delivers a batch) completes instead of
exhausting FerretDB's connection pool.
"""

from __future__ import annotations

import json
import random
import uuid

import pytest

from infra.local.testing import ensure_stack

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack():
    stack = ensure_stack()
    if stack.cfg.ferretdb_backend != "postgresql":
        pytest.skip(f"MOVIEAUGUR_FERRETDB_BACKEND={stack.cfg.ferretdb_backend}: these tests are about the postgresql backend")
    return stack


@pytest.fixture
def mongo(stack):
    from pymongo import MongoClient

    database = f"pgtest_{uuid.uuid4().hex[:8]}"
    # socketTimeoutMS: a hung FerretDB must fail the test, not stall it.
    client: MongoClient = MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000, socketTimeoutMS=60_000)
    try:
        yield client[database]
    finally:
        client.drop_database(database)
        client.close()


def collection_table(stack, database: str, collection: str) -> str:
    """FerretDB's table for a collection (schema = database; table = collection name + hash)."""
    rows = stack.postgres.query(
        f"SELECT _jsonb->>'table' FROM \"{database}\"._ferretdb_database_metadata WHERE _jsonb->>'_id' = '{collection}'")
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_postgres_component_is_up_and_ferretdb_uses_it(stack):
    status = {s.name: s for s in stack.status()}
    assert [s.name for s in stack.status()][:3] == ["kafka", "postgres", "ferretdb"]  # postgres starts before ferretdb
    assert status["postgres"].healthy, status["postgres"]
    assert status["ferretdb"].healthy, status["ferretdb"]
    assert stack.ferretdb.running_backend() == "postgresql"
    assert stack.postgres.query("SHOW plan_cache_mode") == [("force_custom_plan",)]
    assert stack.postgres.query("SELECT evtname FROM pg_event_trigger") == [("movieaugur_id_index",)]


def test_documents_land_in_postgres_and_in_reads_exactly_those(stack, mongo):
    docs = [{"_id": f"item:movie:{i}", "title": f"Movie {i}", "genres": ["Drama", "Comedy"][: 1 + i % 2], "year": 1950 + i % 70}
            for i in range(2000)]
    coll = mongo["items"]
    for start in range(0, len(docs), 500):
        coll.insert_many(docs[start:start + 500])

    # The rows are in PostgreSQL, in the schema named after the database, with our _id index.
    table = collection_table(stack, mongo.name, "items")
    assert stack.postgres.query(f'SELECT count(*) FROM "{mongo.name}"."{table}"') == [("2000",)]
    indexes = {r[0]: r[1] for r in stack.postgres.query(
        f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{mongo.name}' AND tablename = '{table}'")}
    gin = [d for n, d in indexes.items() if n.startswith("movieaugur_idgin_")]
    assert len(gin) == 1 and "USING gin" in gin[0] and "jsonb_path_ops" in gin[0], indexes
    stored = json.loads(str(stack.postgres.query(
        f"SELECT _jsonb FROM \"{mongo.name}\".\"{table}\" WHERE _jsonb->'_id' = '\"item:movie:7\"'")[0][0]))
    assert stored["title"] == "Movie 7"

    # `{_id: x}` is pushed down and answered from the index, not by a scan.
    explain = mongo.command("explain", {"find": "items", "filter": {"_id": "item:movie:42"}})
    assert explain["filterPushdown"] is True
    plan = json.dumps(explain["queryPlanner"])
    assert "Bitmap Index Scan" in plan and "movieaugur_idgin_" in plan, plan
    assert coll.find_one({"_id": "item:movie:42"}) == docs[42]

    # `$in` of 100 ids returns exactly those documents (FerretDB filters it itself: not pushed down).
    wanted = random.Random(9).sample(docs, 100)
    got = list(coll.find({"_id": {"$in": [d["_id"] for d in wanted]}}))
    assert sorted(got, key=lambda d: d["_id"]) == sorted(wanted, key=lambda d: d["_id"])
    assert list(coll.find({"_id": {"$in": ["item:movie:nope", "item:movie:5"]}})) == [docs[5]]


def test_update_command_with_many_matches_completes(mongo):
    """Upstream FerretDB 1.24 keeps one backend connection per matched update statement until the
    whole command ends; 200 matched replacements in one command (a re-delivered sink batch) then wait
    forever for the pool's 51st connection. The stack's build closes each statement's query at once."""
    from pymongo import ReplaceOne

    coll = mongo["recs"]
    coll.insert_many([{"_id": f"u{i}", "v": 0} for i in range(200)])
    result = coll.bulk_write([ReplaceOne({"_id": f"u{i}"}, {"_id": f"u{i}", "v": 1}, upsert=True) for i in range(200)])
    assert (result.matched_count, result.modified_count) == (200, 200)
    again = coll.bulk_write([ReplaceOne({"_id": f"u{i}"}, {"_id": f"u{i}", "v": 1}, upsert=True) for i in range(200)])
    assert (again.matched_count, again.modified_count) == (200, 0)
    assert coll.count_documents({"v": 1}) == 200
