"""veil_export: Brevitas QAT models -> veil model files (models/SCHEMA.md).

    from veil_export import export, ExportError
    export(model, calib_inputs, test_inputs, test_labels, "model.h5", name="my_model")

`python -m veil_export --help` for the command line (export, info, check).
"""

from .version import __version__, SCHEMA_VERSION
from .export import export, ExportError, dequantize, predict, summary, format_summary
from .verify import validate, check_golden
from . import intpath, h5io

__all__ = ["export", "ExportError", "validate", "check_golden", "dequantize", "predict",
           "summary", "format_summary", "intpath", "h5io", "__version__", "SCHEMA_VERSION"]
