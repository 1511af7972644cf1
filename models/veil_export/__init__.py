"""veil_export: Brevitas QAT models -> veil model files (models/SCHEMA.md).

    from veil_export import export, ExportError
    export(model, calib_inputs, test_inputs, test_labels, "model.h5", name="my_model")

`python -m veil_export --help` for the command line (export, info, check).

The names of veil_export.export (torch and Brevitas: seconds of CPU to import)
load on first use, so `python -m veil_export info`, `check` and `--help`,
which need neither, start without them.
"""

import importlib
import sys
import types

from .version import __version__, SCHEMA_VERSION
from .report import summary, format_summary
from .verify import validate, check_golden
from . import intpath, h5io

__all__ = ["export", "ExportError", "validate", "check_golden", "dequantize", "predict",
           "summary", "format_summary", "intpath", "h5io", "__version__", "SCHEMA_VERSION"]

_FROM_EXPORT = ("export", "ExportError", "dequantize", "predict")


def __getattr__(name):
    if name not in _FROM_EXPORT:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    mod = importlib.import_module(__name__ + ".export")
    for n in _FROM_EXPORT:
        globals()[n] = getattr(mod, n)
    return globals()[name]


def __dir__():
    """The lazy names too (tab completion, help()), before their first use."""
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's `export` is the function, never the submodule of that
    name: importing veil_export.export (importlib, or `import
    veil_export.export`) sets the package's attribute to the module; here it
    is set to the module's function instead."""

    def __setattr__(self, name, value):
        if name == "export" and isinstance(value, types.ModuleType):
            value = value.export
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
