"""Daily, after collection: train on the whole log, publish if the model beats popularity.

The quality gate is part of training: when the new model does not beat popularity on held-out
data, nothing is published, the previous model keeps answering, and the task's report says why.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, task

DEFAULTS = {"retries": 2, "retry_delay": timedelta(minutes=15), "execution_timeout": timedelta(hours=3)}


@dag(
    dag_id="train_recommendations",
    schedule="0 3 * * *",  # collection runs at 01:00
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["movieaugur", "train"],
    doc_md=__doc__,
)
def train_recommendations():
    @task
    def train() -> dict:
        from movieaugur_tasks import run_operation

        return run_operation("train")

    @task
    def report(result: dict) -> str:
        verdict = "published" if result["published"] else "kept the previous model"
        return f"{result['model']} {result['version']} ({result['algorithm']}): {verdict}: {result['reason']}"

    report(train())


train_recommendations()
