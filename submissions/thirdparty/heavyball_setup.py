"""HeavyBall (PyPI ``heavyball``, pinned in requirements.txt), imported once for its submissions and run eagerly.

HeavyBall is compile-first: its kernels are wrapped to go through ``torch.compile`` (mode
``max-autotune-no-cudagraphs``) unless ``heavyball.utils.compile_mode`` is None. On this CPU compiling one small
MLP's SOAP step took minutes and recompiled as the step's shapes changed (docs/measurements.md, "HeavyBall and
torch.compile on CPU"), so the submissions set the library's global switch off on import; a process that
imports them runs every HeavyBall optimizer eagerly.
"""

import warnings

from submissions.thirdparty import adapter

heavyball = adapter.library("heavyball", "install it: pip install heavyball==3.2.1 (it is in requirements.txt)")
heavyball.utils.compile_mode = None
# The recipe sets every group's lr before each step (warmup + cosine); HeavyBall takes a changed lr as its new base
# lr (chainable.ChainOpt._step) and warns once that this is experimental.
warnings.filterwarnings("ignore", message="Learning rate changed between steps")
