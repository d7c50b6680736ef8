"""``leases.take_turns``: the spread read of a claim takes turns between groups and stops reading
the due rows as soon as the claim is sure to be full."""

from collections.abc import Iterator

from service.storage.leases import take_turns


class Counted:
    """``(id, group)`` rows handed out one at a time, counting how many were read."""

    def __init__(self, rows: list[tuple[int, str]]) -> None:
        self.rows, self.read = rows, 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for row in self.rows:
            self.read += 1
            yield row


def test_without_room_one_row_of_each_group_in_turn_and_the_read_stops_at_limit_groups():
    rows = Counted([(1, "a"), (2, "a"), (3, "b"), (4, "a"), (5, "c"), (6, "d"), (7, "e")])
    assert take_turns(rows, str, 3) == [1, 3, 5]
    assert rows.read == 5  # the third group's first row makes the claim sure; d and e are not read


def test_without_room_a_busy_group_cannot_fill_the_claim_while_others_are_due():
    rows = Counted([(i, "busy") for i in range(1, 41)] + [(41, "quiet"), (42, "calm")])
    assert take_turns(rows, str, 4) == [1, 41, 42, 2]
    assert rows.read == 42  # fewer groups than the limit: every row is read


def test_with_room_the_read_stops_once_the_rows_within_each_groups_room_fill_the_claim():
    rows = Counted([(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "b"), (6, "c"), (7, "c")])
    room = {"a": 2, "b": 4, "c": 4}.__getitem__
    assert take_turns(rows, str, 4, room) == [1, 4, 2, 5]
    assert rows.read == 5  # a's third row is beyond its room; c is due later and waits


def test_a_group_without_room_takes_nothing_and_counts_nothing():
    rows = Counted([(1, "full"), (2, "full"), (3, "free"), (4, "free")])
    assert take_turns(rows, str, 2, {"full": 0, "free": 5}.__getitem__) == [3, 4]
    assert rows.read == 4


def test_none_values_form_their_own_group():
    assert take_turns([(1, None), (2, "x"), (3, None)], lambda value: value or "-", 3) == [1, 2, 3]
