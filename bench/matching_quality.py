"""Story-matching quality: precision and recall on the labelled evaluation set.

    .venv/bin/python bench/matching_quality.py [--seed N] [--misses]

Builds tests/matching_eval.py's set (base articles republished with generated
variations, labelled by construction), stores every copy in a fresh SQLite file through
Store.record_poll, and prints precision and recall over the labelled pairs, over every
pair of copies, per negative kind and per link / title / text variation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import matching_eval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=matching_eval.SEED)
    parser.add_argument("--misses", action="store_true", help="list the variants missed")
    args = parser.parse_args()
    evalset = matching_eval.build(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        story_of = matching_eval.run(evalset, f"sqlite:///{folder}/eval.db")
    print(", ".join(f"{key}: {value}" for key, value in matching_eval.describe(evalset).items()))
    print()
    print("| pairs | count | positives | negatives | TP | FP | FN | precision | recall |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [
        ("labelled", matching_eval.score(evalset.pairs, story_of)),
        ("all pairs of copies", matching_eval.score(matching_eval.all_pairs(evalset), story_of)),
    ]
    for name, result in rows:
        print(_row(name, result))
    negatives = {
        kind: result
        for kind, result in matching_eval.by_kind(evalset.pairs, story_of, None).items()
        if kind.startswith("negative:")
    }
    print()
    print("| hard negatives | pairs | merged (FP) |")
    print("|---|---|---|")
    for kind, result in negatives.items():
        print(f"| {kind.removeprefix('negative:')} | {result.pairs} | {result.false_positives} |")
    for part, name in enumerate(("link", "title", "text")):
        print()
        print(f"| {name} variation | positive pairs | matched | recall |")
        print("|---|---|---|---|")
        for kind, result in matching_eval.by_kind(evalset.pairs, story_of, part).items():
            print(
                f"| {kind.split(':', 1)[1]} | {result.positives} | {result.true_positives} "
                f"| {result.recall:.3f} |"
            )
    if args.misses:
        print()
        for variant, count in matching_eval.missed(evalset, story_of).most_common():
            print(f"missed {count}× {variant}")


def _row(name: str, result: matching_eval.Score) -> str:
    return (
        f"| {name} | {result.pairs} | {result.positives} | {result.negatives} "
        f"| {result.true_positives} | {result.false_positives} | {result.false_negatives} "
        f"| {result.precision:.4f} | {result.recall:.4f} |"
    )


if __name__ == "__main__":
    main()
