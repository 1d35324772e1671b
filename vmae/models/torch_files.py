"""Safe reading of torch files a user hands in (checkpoints from the internet).

Unpickling a checkpoint can run any code it holds. So every torch file a user hands in is read by
``load_torch_file``: ``torch.load(weights_only=True)`` with a short allowlist (``SAFE_GLOBALS``: the
``argparse.Namespace`` that official checkpoints keep as ``args``, numpy scalars and dtypes); a
file that needs more fails with a one-line ``UntrustedCheckpointError`` naming the file and
``--trust-checkpoint``, the explicit opt-in to a full unpickle of a file the user trusts. It never
falls back to a full unpickle by itself.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmae.errors import UserError

TRUST_FLAG = "--trust-checkpoint"


class UntrustedCheckpointError(UserError, RuntimeError):
    """A checkpoint needs a full unpickle (which can run code) and the user did not opt in."""


def _numpy_scalar_globals() -> list[Any]:
    """numpy's scalar constructor under the names numpy 1 (``numpy.core``) and 2 (``numpy._core``)
    write into pickles, ``numpy.dtype`` and its bool / int / float classes: what an ``epoch`` or
    ``max_accuracy`` saved as a numpy scalar needs (not arrays, not object dtypes)."""
    scalar = np.array(0.0)[()].__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    dtype_classes = list(dict.fromkeys(type(np.dtype(code)) for code in "?bBhHiIlLqQefd"))  # bool, ints, floats
    return [np.dtype, *dtype_classes, scalar] + [(scalar, f"{module}.multiarray.scalar")
                                                 for module in ("numpy.core", "numpy._core")]


SAFE_GLOBALS: list[Any] = [argparse.Namespace, *_numpy_scalar_globals()]
"""What an untrusted checkpoint may build besides tensors and plain containers: the official
MCG-NJU checkpoints' ``args`` (an ``argparse.Namespace``) and numpy scalars. Hugging Face
``pytorch_model.bin`` files hold tensors only."""


def load_torch_file(path: str | Path, trust: bool = False) -> Any:
    """Read a torch file a user handed in, onto the CPU: weights only (tensors, plain values and
    ``SAFE_GLOBALS``), or, with ``trust`` (``--trust-checkpoint``), a full unpickle."""
    path = Path(path)
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        needs = _unsafe_globals(path)
        raise UntrustedCheckpointError(
            f"{path}: not loadable as weights only{f' (it needs {needs})' if needs else ''}: expected tensors "
            f"and plain values; if you trust this file and its source, pass {TRUST_FLAG} to unpickle it in "
            "full (that can run any code it holds)") from None
    except (RuntimeError, EOFError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UntrustedCheckpointError(f"{path}: not a readable torch checkpoint ({reason}): expected a file "
                                       "written by torch.save") from None


def _unsafe_globals(path: Path) -> str:
    """The globals outside the allowlist that ``path`` names (without running anything), or ''."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an old (non-zip) torch file or no torch file at all
        return ""
    allowed = {f"{g.__module__}.{g.__qualname__}" if not isinstance(g, tuple) else g[1] for g in SAFE_GLOBALS}
    return ", ".join(name for name in names if name not in allowed)
