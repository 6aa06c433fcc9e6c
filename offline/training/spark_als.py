"""ALS on Spark MLlib (implicitPrefs=True) as a training engine: `movieaugur train --engine spark`.

The pipeline is unchanged (offline/training/pipeline.py): the same matrix (from the snapshot or the
log), the same hold-out split and quality gate, the same saved model and published events. Only the
solver runs on Spark: `SparkALS.fit(X)` writes X's entries as Parquet (user, item, weight: the
weighted, deduplicated, redaction-free matrix that load_matrix built from the snapshot's segments),
Spark reads that Parquet, MLlib's ALS fits, and the factors come back as Parquet too (no row-by-row
py4j traffic). The fitted model *is* an `ALS` (same kind, same params, same factors): saving,
loading, ranking, fold-in and publishing are the implicit engine's code paths.

Local mode (`local[2]`) by default; `MOVIEAUGUR_SPARK_MASTER` names a cluster (e.g. the compose
file's `spark://spark-master:7077`). With a cluster, the work folder (`MOVIEAUGUR_SPARK_WORK_DIR`,
default next to the snapshot) must be the same path on the driver and the workers.

Hyper-parameters are given in implicit's terms and translated (`spark_params`):
- implicit weights a user's regularisation by λ, MLlib by λ·n_u (ALS-WR: the user's number of
  ratings; the same for items). regParam = λ / mean(n_u) keeps the average user's penalty equal.
- implicit's confidence is α·x, MLlib's 1 + α·x: the same α (the 1 is MLlib's preference floor).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from offline.training.models.als import ALS
from offline.training.models.base import Recommender
from offline.training.models.registry import build_model

DEFAULT_MASTER = "local[2]"


def spark_params(params: dict[str, Any], X: sp.csr_matrix) -> dict[str, Any]:
    """MLlib ALS arguments for implicit-style hyper-parameters on matrix X (see the module doc)."""
    counts = np.diff(X.indptr)
    mean_count = float(counts[counts > 0].mean()) if X.nnz else 1.0
    return {
        "rank": int(params["factors"]),
        "maxIter": int(params["iterations"]),
        "regParam": float(params["regularization"]) / mean_count,
        "alpha": float(params["alpha"]),
        "seed": int(params.get("random_state", 0)),
    }


class SparkALS(ALS):
    """ALS whose `fit` runs on Spark MLlib; saved, loaded and served as an `ALS`."""

    #: MLlib solves users with its ALS-WR objective (λ·n_u, confidence 1 + α·x), which the inherited
    #: implicit-style refresh does not reproduce: the trainer refits instead of refreshing.
    refreshes_users = False

    def __init__(self, session: Any, work_dir: Path, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.work_dir = Path(work_dir)
        self.spark_args: dict[str, Any] = {}

    def _fit(self, X: sp.csr_matrix) -> None:
        from pyspark.ml.recommendation import ALS as MLlibALS

        W = self._weighted(X).tocoo()
        run = self.work_dir / f"als-{uuid.uuid4().hex}"
        run.mkdir(parents=True)
        try:
            entries = pa.table({
                "user": pa.array(W.row.astype(np.int32)),
                "item": pa.array(W.col.astype(np.int32)),
                "rating": pa.array(W.data.astype(np.float32)),
            })
            pq.write_table(entries, run / "entries.parquet")
            frame = self.session.read.parquet(str(run / "entries.parquet"))
            self.spark_args = spark_params(self.params, X)
            blocks = max(2, int(self.session.sparkContext.defaultParallelism))
            solver = MLlibALS(
                implicitPrefs=True, userCol="user", itemCol="item", ratingCol="rating", nonnegative=False,
                numUserBlocks=blocks, numItemBlocks=blocks, **self.spark_args,
            )
            fitted = solver.fit(frame)
            rank = self.spark_args["rank"]
            self.user_factors = self._factors(fitted.userFactors, run / "users", X.shape[0], rank)
            self.item_factors = self._factors(fitted.itemFactors, run / "items", X.shape[1], rank)
        finally:
            shutil.rmtree(run, ignore_errors=True)

    @staticmethod
    def _factors(frame: Any, path: Path, n: int, rank: int) -> np.ndarray:
        """MLlib's (id, features) rows as an n × rank float32 array; rows it never saw are zero."""
        frame.write.mode("overwrite").parquet(str(path))
        table = pq.read_table(path)
        ids = table.column("id").to_numpy()
        features = table.column("features").combine_chunks()
        values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        out = np.zeros((n, rank), dtype=np.float32)
        out[ids] = values.reshape(len(ids), rank)
        return out


@dataclass
class SparkEngine:
    session: Any
    work_dir: Path

    def model(self, kind: str, params: dict[str, Any], name: str | None = None) -> Recommender:
        """ALS on Spark; any other kind (popularity for the gate's baseline) as usual."""
        if kind != ALS.kind:
            return build_model(kind, params, name=name)
        return SparkALS(self.session, self.work_dir, name=name, **params)


@contextlib.contextmanager
def spark_engine(
    master: str | None = None,
    work_dir: Path | str | None = None,
    driver_memory: str = "4g",
    executor_memory: str | None = None,
    app_name: str = "movieaugur-train",
) -> Iterator[SparkEngine]:
    """A Spark session for one training run (stopped afterwards, the JVM with it)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # the optional extra
        raise RuntimeError("the spark engine needs pyspark: pip install 'movieaugur[spark]' (and Java 17)") from error
    owned = work_dir is None
    folder = Path(tempfile.mkdtemp(prefix="movieaugur-spark-")) if work_dir is None else Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(master or DEFAULT_MASTER)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.local.dir", str(folder / "spark-local"))
    )
    if executor_memory:
        builder = builder.config("spark.executor.memory", executor_memory)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(folder / "checkpoints"))
    try:
        yield SparkEngine(session, folder)
    finally:
        session.stop()
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
