"""Seeds: drawing one when the user gave none, and deriving a study's from a campaign's. One owner each."""

import os
import struct

import numpy as np


def draw_seed(what: str) -> int:
    """A fresh 32-bit seed from the OS, announced so that ``what`` (``"run"``, ``"campaign"``) can be repeated."""
    seed = struct.unpack("I", os.urandom(4))[0]
    print(f"no --rng_seed given; drew {seed} (pass --rng_seed={seed} to repeat this {what})", flush=True)
    return seed


def study_seed(rng_seed: int, study: int) -> int:
    """Study ``k``'s seed: ``SeedSequence([rng_seed, k])``'s first word, kept to 31 bits."""
    return int(np.random.SeedSequence([rng_seed, study]).generate_state(1)[0] >> 1)
