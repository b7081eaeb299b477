"""Names that JAX removed and submissions written for older JAX still call, restored while a trial runs.

Opt-in (``--jax_removed_names``), for published JAX submissions run unmodified on today's JAX:

- ``jax.tree_map``, ``jax.tree_leaves``, ``jax.tree_flatten``, ``jax.tree_unflatten``, ``jax.tree_structure`` and
  ``jax.tree_transpose``: aliases of the ``jax.tree_util`` functions of the same names until JAX 0.6.0 removed
  them; restored as those same functions.
- ``jnp.clip(a, a_min=..., a_max=...)``: the keywords ``a``, ``a_min`` and ``a_max`` were deprecated aliases of
  ``arr``, ``min`` and ``max`` until JAX removed them; restored by renaming them to today's arguments (giving an
  argument under both names is a TypeError, as it was).

Only what is missing is added, so on a JAX that still has a name, its own stays. ``restored()`` undoes everything
on exit. The submission's files stay as published.
"""

from contextlib import contextmanager

TREE_NAMES = ("tree_map", "tree_leaves", "tree_flatten", "tree_unflatten", "tree_structure", "tree_transpose")
CLIP_KEYWORDS = {"a": "arr", "a_min": "min", "a_max": "max"}


def _clip_with_old_keywords(clip):
    def clip_(*args, **kwargs):
        for old, new in CLIP_KEYWORDS.items():
            if old in kwargs:
                taken = new in kwargs or (new == "arr" and args)
                if taken:
                    raise TypeError(f"clip() got {new!r} both as {old!r} and as {new!r}")
                value = kwargs.pop(old)
                if new == "arr":
                    args = (value,)
                else:
                    kwargs[new] = value
        return clip(*args, **kwargs)

    clip_.__doc__ = clip.__doc__
    clip_.__wrapped__ = clip
    return clip_


def _clip_takes_old_keywords(jnp) -> bool:
    import inspect

    try:
        return "a_min" in inspect.signature(jnp.clip).parameters
    except (TypeError, ValueError):
        return True  # no signature to read: leave it alone


@contextmanager
def restored():
    """Within the block, the removed names exist again (only those this JAX lacks)."""
    import jax
    import jax.numpy as jnp
    from jax import tree_util

    added = [name for name in TREE_NAMES if not hasattr(jax, name)]
    for name in added:
        setattr(jax, name, getattr(tree_util, name))
    clip = jnp.clip
    if not _clip_takes_old_keywords(jnp):
        jnp.clip = _clip_with_old_keywords(clip)
    try:
        yield
    finally:
        for name in added:
            delattr(jax, name)
        jnp.clip = clip
