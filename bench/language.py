"""Languages of the corpus pages as ``extract_article`` decides them, this code beside a baseline
revision, in one run.

    python bench/language.py [--shared PATH] [--baseline-ref 1c2b1bc]

Each contender extracts all 240 pages of ``bench/ingest.py`` (``extraction`` and
``extraction-fundus``) in a subprocess of its own and reports, per page, the article's
``language`` and ``language_confidence`` (None: declared by the page, not identified). The fundus pages' truth is their country (``de``: German; ``uk``, ``us``: English);
the other pages have none, so they are compared between contenders. Prints Markdown for
``docs/benchmarks.md`` ("Memory"; the memory itself is ``bench/memory.py``'s).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FUNDUS_TRUTH = {"de": "de", "uk": "en", "us": "en"}


def _languages() -> None:
    """In the contender's process (its code first on ``PYTHONPATH``): read {key: page file} from
    stdin, print {key: [language, confidence]}."""
    from service.ingest.pages.extractor import ExtractionError, extract_article

    pages = {}
    for key, path in json.load(sys.stdin).items():
        html = gzip.decompress(Path(path).read_bytes())
        try:
            article = extract_article(html, None)
        except ExtractionError:
            pages[key] = [None, None]
            continue
        pages[key] = [article.language, article.language_confidence]
    print(json.dumps(pages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--baseline-ref", default="1c2b1bc", help="git revision of the code to compare with")
    parser.add_argument("--contender", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        _languages()
        return
    sys.path.insert(0, str(ROOT))
    from bench.ingest import _pages, export_revision

    corpus = Path(args.shared) / "corpus"
    files = {f"{group}/{key}": str(corpus / group / "html" / f"{key}.html.gz") for group, key in _pages(corpus, None)}
    runs = {}
    with tempfile.TemporaryDirectory() as old:
        export_revision(args.baseline_ref, old)
        for name, code in ((f"baseline ({args.baseline_ref})", old), ("ours", str(ROOT))):
            out = subprocess.run([sys.executable, __file__, "--contender"], input=json.dumps(files), check=True,
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": code}, cwd=code)
            runs[name] = json.loads(out.stdout)
    (base_name, base), (ours_name, ours) = runs.items()
    keys = list(ours)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load}, {len(keys)} corpus pages")
    print("| code | fundus pages right (of 104) | language identified (not declared) | same language as the baseline |"
          "\n|---|---|---|---|")
    fundus = [k for k in keys if k.startswith("extraction-fundus/")]
    for name, pages in runs.items():
        right = sum(pages[k][0] == FUNDUS_TRUTH[k.split("/")[1]] for k in fundus)
        identified = sum(pages[k][1] is not None for k in keys)
        same = sum(pages[k][0] == base[k][0] for k in keys)
        print(f"| {name} | {right} | {identified} | {same} |")
    for key in keys:  # a different language, or identified by one and declared for the other
        if ours[key][0] != base[key][0] or (ours[key][1] is None) != (base[key][1] is None):
            print(f"- `{key}`: {base_name} {base[key]}, {ours_name} {ours[key]}")


if __name__ == "__main__":
    main()
