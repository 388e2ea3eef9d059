"""Which types a model file may contain: the allow-list behind every skops load.

skops never unpickles; it rebuilds objects from a JSON tree and imports only the types
the caller trusts. A type it does not trust by default is trusted here when it comes from
a library a Forgeline model is built of, unless it is one of the few names in those
libraries that read or write files, load native code or run commands. Everything else is
refused, so a package from elsewhere cannot make ``load_model`` import arbitrary code.
"""

from __future__ import annotations

from pathlib import Path

from forgeline.errors import IntegrityError, InvalidInput

__all__ = ["is_trusted", "load_skops", "untrusted_types"]

# forgeline.training.: packages written before Forgeline's transformers moved to
# forgeline.packaging.transformers name them there (training/features.py still has them).
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.",
                    "forgeline.packaging.", "forgeline.training.")
TRUSTED_NAMES = frozenset({
    *(f"builtins.{n}" for n in ("bool", "bytearray", "bytes", "complex", "dict", "float",
                                "frozenset", "int", "list", "range", "set", "slice", "str",
                                "tuple")),
    "collections.Counter", "collections.OrderedDict", "collections.defaultdict",
    "collections.deque", "functools.partial",
})
# Inside the trusted libraries: modules and names that touch files, native libraries,
# the network or processes. A model never needs them.
_REFUSED_MODULES = ("numpy.ctypeslib", "numpy.distutils", "numpy.f2py", "numpy.lib.format",
                    "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib._datasource",
                    "numpy.testing", "scipy.datasets", "scipy.io", "sklearn.datasets",
                    "sklearn.externals", "sklearn.utils._testing", "lightgbm.libpath",
                    "xgboost.collective", "xgboost.dask", "xgboost.spark", "xgboost.tracker")
_REFUSED_NAMES = frozenset({"DataSource", "fromfile", "genfromtxt", "load", "load_library",
                            "loads", "loadtxt", "memmap", "open", "popen", "save", "savetxt",
                            "savez", "savez_compressed", "system", "tofile"})


def is_trusted(type_name: str) -> bool:
    """Whether a model file may contain ``type_name`` (``"module.Name"``)."""
    if type_name in TRUSTED_NAMES:
        return True
    if not type_name.startswith(TRUSTED_PREFIXES):
        return False
    module, _, name = type_name.rpartition(".")
    if name in _REFUSED_NAMES:
        return False
    return not any(module == m or module.startswith(m + ".") for m in _REFUSED_MODULES)


def untrusted_types(path: Path) -> tuple[list[str], list[str]]:
    """``(types to pass to skops, types refused)`` for the skops file at ``path``."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as e:  # a zip or JSON that skops cannot read: a damaged file
        raise IntegrityError(f"{path} is not a readable skops model file ({e}).",
                             hint="Re-save the model package.") from e
    return [t for t in found if is_trusted(t)], [t for t in found if not is_trusted(t)]


def refused_message(path: Path, refused: list[str]) -> str:
    shown = ", ".join(refused[:10]) + (f" and {len(refused) - 10} more" if len(refused) > 10
                                       else "")
    return (f"{path} contains types Forgeline does not trust: {shown}. Only scikit-learn, "
            "numpy, scipy, LightGBM, XGBoost and Forgeline model types are loaded.")


def load_skops(path: Path) -> object:
    """Load a skops file, trusting only what :func:`is_trusted` allows.

    Raises:
        IntegrityError: the file holds a type outside the allow-list, or is unreadable.
        InvalidInput: the file needs a library that is not installed.
    """
    import skops.io as sio

    trusted, refused = untrusted_types(path)
    if refused:
        raise IntegrityError(refused_message(path, refused),
                             hint="Rebuild the model from those libraries, or inspect the "
                                  "file with skops.io.get_untrusted_types before using it.")
    try:
        return sio.load(path, trusted=trusted)
    except ModuleNotFoundError as e:
        raise InvalidInput(f"{path} needs the Python package {e.name!r}, which is not "
                           "installed.", hint="Install the versions listed in the "
                           "package's requirements.txt.") from e
