"""Id generators: unique, in the format each caller relies on, with a random prefix per generator."""

from __future__ import annotations

import re

from breakwater.core.ids import IdGenerator


def test_ids_are_unique_and_count_up_in_hex() -> None:
    """Ids never repeat; after the prefix comes the counter, from 1, zero-padded to ten hex digits."""
    ids = IdGenerator()
    made = [ids.new() for _ in range(1000)]
    assert len(set(made)) == len(made)
    assert re.fullmatch(r"[0-9a-f]{12}0{9}1", made[0])
    assert made[0][:12] == ids.prefix and made[16] == f"{ids.prefix}{17:010x}"


def test_each_generator_has_its_own_random_prefix() -> None:
    """Two generators (two processes) draw different prefixes, so their ids never collide."""
    a, b = IdGenerator(), IdGenerator()
    assert a.prefix != b.prefix and len(a.prefix) == len(b.prefix) == 12
    assert a.new() != b.new()


def test_prefix_length_and_counter_width_are_parameters() -> None:
    """``prefix_bytes`` sets the prefix (two hex digits a byte, none for 0); ``width`` pads the counter (0: none)."""
    short = IdGenerator(4, width=0)
    assert re.fullmatch(r"[0-9a-f]{8}", short.prefix)
    assert [short.new() for _ in range(17)][-1] == f"{short.prefix}11"
    bare = IdGenerator(0, width=12)
    assert bare.prefix == "" and bare.new() == "000000000001"
