"""Reproduce docs/model-quality.md: the §5 protocol over the default line-up.

Usage: python bench/model_quality.py /path/to/ml-latest-small [out.json] [budget_s]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offline.evaluation.protocol import run_protocol
from offline.training.tuning import default_models


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/ml-latest-small"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    t0 = time.perf_counter()
    res = run_protocol(data, default_models(budget), progress=lambda m: print(m, file=sys.stderr, flush=True))
    res["wall_seconds"] = time.perf_counter() - t0
    print("| model | R@20 | R@50 | NDCG@100 | fit s/seed | rank s/seed |")
    print("|---|---|---|---|---|---|")
    for name, r in res["models"].items():
        m = r["mean"]
        print(
            f"| {name} | {m['recall@20']:.4f} | {m['recall@50']:.4f} | {m['ndcg@100']:.4f} "
            f"| {r['fit_seconds']:.1f} | {r['recommend_seconds']:.2f} |"
        )
    if out:
        out.write_text(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
