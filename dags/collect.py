"""Daily collection from TMDB, one DAG per kind of data (the same shape, so one definition):

- collect_metadata: catalog metadata of what is popular, as ItemCatalogued events;
- collect_popularity: the popular lists per item type, as PopularityObserved events.

Both run at 01:00; train_recommendations runs at 03:00 on what they appended.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, task

# what -> task timeout: metadata fans out to one detail request per title, popularity is a few pages.
KINDS = {"metadata": timedelta(minutes=60), "popularity": timedelta(minutes=20)}


def collect_dag(what: str, timeout: timedelta):
    @dag(
        dag_id=f"collect_{what}",
        schedule="0 1 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 3, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(minutes=60)},
        tags=["movieaugur", "collect"],
        doc_md=__doc__,
    )
    def collect_from_tmdb():
        @task(execution_timeout=timeout)
        def collect() -> dict:
            from movieaugur_tasks import run_operation

            return run_operation("collect", what=what)

        collect()

    return collect_from_tmdb()


for _what, _timeout in KINDS.items():
    collect_dag(_what, _timeout)
