"""Daily: TMDB's popular lists per item type, appended to the log as PopularityObserved events."""

from datetime import datetime, timedelta

from airflow.sdk import dag, task

DEFAULTS = {"retries": 3, "retry_delay": timedelta(minutes=10), "execution_timeout": timedelta(minutes=20)}


@dag(
    dag_id="collect_popularity",
    schedule="0 1 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["movieaugur", "collect"],
    doc_md=__doc__,
)
def collect_popularity():
    @task
    def collect() -> dict:
        from movieaugur_tasks import run_operation

        return run_operation("collect", what="popularity")

    collect()


collect_popularity()
