"""UCI News Aggregator dev slice, streamed in file order and in shuffled orders, with the shipped
combiner beside another ``combiner.json`` (e.g. the one before a refit), in one run.

    python bench/stories_uci_orders.py [--shared ../shared] [--baseline COMBINER.json] [--orders 5]

The headlines' features are computed once (``files.features_stream``; headlines have no body, so
no e5 text vector) and fed to ``clustering.OnlineClusterer`` (``Params()``, merges on, as
``newsloom stories cluster``) in the file's order and in ``--orders`` permutations
(``numpy.random.default_rng(seed)``, seeds 0..n-1). Figures: B-cubed F1 against the file's
``story`` labels, final stories after live merges. ``--baseline``: a combiner document
(``git show REV:service/stories/combiner.json > FILE``) scored the same way, with its own
``threshold``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories import clustering, files, metrics  # noqa: E402
from service.stories.clustering import OnlineClusterer, Params  # noqa: E402
from service.stories.combiner import COEFFICIENTS, Combiner  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--baseline", metavar="COMBINER.json")
    parser.add_argument("--orders", type=int, default=5)
    args = parser.parse_args()
    rows = files.read_jsonl(Path(args.shared) / "corpus/stories/uci_news_dev.jsonl")
    gold = [r["story"] for r in rows]
    started = time.perf_counter()
    feats = dict(files.features_stream(rows, list(range(len(rows)))))
    print(f"features of {len(rows)} headlines: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    orders = [("file order", list(range(len(rows))))]
    orders += [(f"shuffle {seed}", np.random.default_rng(seed).permutation(len(rows)).tolist()) for seed in range(args.orders)]
    combiners = [("shipped", json.loads(COEFFICIENTS.read_text(encoding="utf-8")))]
    if args.baseline:
        combiners.insert(0, ("baseline " + args.baseline, json.loads(Path(args.baseline).read_text(encoding="utf-8"))))
    shipped = clustering.default_combiner
    print("| combiner | " + " | ".join(name for name, _ in orders) + " | mean of shuffles |")
    print("|---|" + "---|" * (len(orders) + 1))
    for label, spec in combiners:
        combiner = Combiner(spec)
        clustering.default_combiner = lambda combiner=combiner: combiner
        params = replace(Params(), threshold=float(spec["threshold"]))
        f1s = []
        try:
            for _name, order in orders:
                clusterer = OnlineClusterer(params)
                labels = [0] * len(rows)
                for i in order:
                    labels[i] = clusterer.add(feats[i])[0]
                f1s.append(metrics.bcubed(gold, [clusterer.resolve(x) for x in labels]).f1)
        finally:
            clustering.default_combiner = shipped
        print(f"| {label} | " + " | ".join(f"{f:.3f}" for f in f1s) + f" | {np.mean(f1s[1:]):.3f} |", flush=True)


if __name__ == "__main__":
    main()
