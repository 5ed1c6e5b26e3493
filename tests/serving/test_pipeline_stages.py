"""The business rules of the top stage and the ranker's reordering, on any candidate list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.serving.pipeline_stages import Candidates, excluded_ids, reorder, top

ids = st.lists(st.integers(0, 20), max_size=40)


@settings(max_examples=25, deadline=None)
@given(items=ids, drop=st.sets(st.integers(0, 20)), n=st.integers(1, 10), dedupe=st.booleans())
def test_top_keeps_the_best_n_without_excluded_items_or_repeats(
    items: list[int], drop: set[int], n: int, dedupe: bool
) -> None:
    cands = Candidates(list(items), [float(-i) for i in range(len(items))])
    top(cands, n, {str(d) for d in drop}, dedupe)
    allowed = [i for i in items if i not in drop]
    if dedupe:
        allowed = list(dict.fromkeys(allowed))
    assert cands.items == allowed[:n]
    assert cands.scores == sorted(cands.scores, reverse=True)
    assert (cands.reason is not None) == (bool(items) and not allowed)


def test_excluded_ids_read_a_list_or_a_comma_separated_feature() -> None:
    assert excluded_ids("3, 17,,42") == {"3", "17", "42"}
    assert excluded_ids([3, 17]) == {"3", "17"}
    assert excluded_ids(None) == set()


def test_the_ranker_scores_reorder_each_rows_candidates() -> None:
    found = [Candidates([1, 2, 3], [0.9, 0.8, 0.7]), Candidates(), Candidates([4, 5], [0.5, 0.4])]
    reorder(found, [0, 0, 0, 2, 2], [0.1, 0.3, 0.2, 1.0, 2.0])
    assert [c.items for c in found] == [[2, 3, 1], [], [5, 4]]
    assert found[0].scores == [0.3, 0.2, 0.1]
