"""Manual: import interactions from a dataset folder (MovieLens layout) into the log.

Re-running with the same files appends nothing new: event ids are derived from the rows.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

DEFAULTS = {"retries": 1, "retry_delay": timedelta(minutes=5), "execution_timeout": timedelta(hours=2)}


@dag(
    dag_id="import_interactions",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    params={"path": Param("/data/ml-latest-small", type="string", description="Folder with ratings.csv and movies.csv")},
    tags=["movieaugur", "import"],
    doc_md=__doc__,
)
def import_interactions():
    @task
    def load(params=None) -> dict:
        from pathlib import Path

        from movieaugur_tasks import run_operation

        return run_operation("load_movielens", folder=Path(params["path"]))

    load()


import_interactions()
