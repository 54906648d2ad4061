"""Measured matching quality: the generated evaluation set through a real SQLite store.

The set (tests/matching_eval.py) is deterministic: the same seed gives the same copies
and MinHash is seeded, so these figures are exact, not samples. Precision must stay at
or above 0.98 (the issue's floor). Recall must stay at or above 0.95, the issue's target:
the default seed measures 0.976, and over seeds 1–12 the lowest was 0.952; what it
misses by design is a republisher's own URL under a generic title with a short text
(no safe way to tell "Podcast" from "Podcast") and a copy that arrives before the two
copies it would bridge.
"""

from __future__ import annotations

from pathlib import Path

import matching_eval
import pytest

PRECISION_FLOOR = 0.98
RECALL_FLOOR = 0.95


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[matching_eval.EvalSet, list[int]]:
    evalset = matching_eval.build()
    folder: Path = tmp_path_factory.mktemp("eval")
    return evalset, matching_eval.run(evalset, f"sqlite:///{folder / 'eval.db'}")


def test_evaluation_set_has_enough_labelled_pairs_of_both_kinds() -> None:
    evalset = matching_eval.build()
    counts = matching_eval.describe(evalset)
    assert counts["positive pairs"] >= 200
    assert counts["negative pairs"] >= 100
    assert len(evalset.pairs) >= 300
    kinds = {pair.kind for pair in evalset.pairs if not pair.same}
    assert kinds == {
        "negative:same-topic",
        "negative:follow-up",
        "negative:generic",
        "negative:same-title",
    }


def test_evaluation_set_is_deterministic() -> None:
    first, second = matching_eval.build(), matching_eval.build()
    assert [(c.source, c.variant, c.entry) for c in first.copies] == [
        (c.source, c.variant, c.entry) for c in second.copies
    ]


def test_matching_precision_and_recall_on_labelled_pairs(
    outcome: tuple[matching_eval.EvalSet, list[int]],
) -> None:
    evalset, story_of = outcome
    result = matching_eval.score(evalset.pairs, story_of)
    assert result.precision >= PRECISION_FLOOR, result
    assert result.recall >= RECALL_FLOOR, (result, matching_eval.missed(evalset, story_of))


def test_matching_precision_over_every_pair_of_copies(
    outcome: tuple[matching_eval.EvalSet, list[int]],
) -> None:
    evalset, story_of = outcome
    result = matching_eval.score(matching_eval.all_pairs(evalset), story_of)
    assert result.precision >= PRECISION_FLOOR, result
    assert result.recall >= RECALL_FLOOR, result


@pytest.mark.parametrize("kind", ["generic", "same-title", "follow-up", "same-topic"])
def test_hard_negatives_never_merge(
    outcome: tuple[matching_eval.EvalSet, list[int]], kind: str
) -> None:
    evalset, story_of = outcome
    pairs = [pair for pair in evalset.pairs if pair.kind == f"negative:{kind}"]
    assert pairs
    assert matching_eval.score(pairs, story_of).false_positives == 0


def test_every_link_variant_of_a_strong_key_is_matched(
    outcome: tuple[matching_eval.EvalSet, list[int]],
) -> None:
    evalset, story_of = outcome
    per_link = matching_eval.by_kind(evalset.pairs, story_of, 0)
    fuzzy_or_bridged = {"link:own-url", "link:shortlink"}
    for kind, result in per_link.items():
        if kind not in fuzzy_or_bridged:
            assert result.recall == 1.0, (kind, result)
