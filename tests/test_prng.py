"""The numpy emulation of JAX keys matches AlgoPerf's definition (RandomState seeded by the key mod 2**31-1)."""

import numpy as np

from compat import prng

M = 2**31 - 1


def test_split_is_randomstate_seeded_by_the_key():
    key = np.array([123, 2**32 - 5], dtype=np.uint32)  # second entry exceeds M: taken modulo M
    expected = np.random.RandomState([123, (2**32 - 5) % M]).randint(0, M, dtype=np.uint32, size=[4, 2])
    np.testing.assert_array_equal(prng.split(key, 4), expected)


def test_prngkey_is_first_split_of_the_seed():
    expected = np.random.RandomState(7).randint(0, M, dtype=np.uint32, size=[2, 2])[0]
    key = prng.PRNGKey(7)
    np.testing.assert_array_equal(key, expected)
    assert key.shape == (2,) and key.dtype == np.uint32


def test_fold_in_pairs_a_fresh_draw_with_the_data():
    key = prng.PRNGKey(0)
    folded = prng.fold_in(key, 17)
    assert folded[1] == 17
    assert folded[0] == np.random.RandomState([int(k) % M for k in key]).randint(0, M, dtype=np.uint32)
    # a folded key can be split, as the runner does every step
    assert prng.split(folded, 4).shape == (4, 2)


def test_streams_are_deterministic_and_steps_differ():
    a = [prng.split(prng.fold_in(prng.PRNGKey(3), s), 4) for s in range(3)]
    b = [prng.split(prng.fold_in(prng.PRNGKey(3), s), 4) for s in range(3)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # fold_in keeps the key's draw and pairs it with the step; the step changes the split through the seed list
    assert not np.array_equal(a[0], a[1])
