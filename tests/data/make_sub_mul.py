#!/usr/bin/env python3
"""Writes tests/data/sub_mul.h5, the exported model tests/test_sub_mul.c reads
with the C loader: models/tests/test_exporter.py's SubMul (a - b and a * b
of two quantized tensors), 16 calibration and 16 golden samples to keep it
small.

    $(bash scripts/setup-python.sh)/bin/python tests/data/make_sub_mul.py
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path[:0] = [os.path.join(repo, "models"), os.path.join(repo, "models", "tests")]
from test_exporter import export_sub_mul  # noqa: E402

if __name__ == "__main__":
    export_sub_mul(os.path.join(here, "sub_mul.h5"), n_calib=16, n_golden=16)
