import os
import sys

# One thread for torch (OpenMP, MKL), as the training scripts use
# (sample_common.seed_all): the models here are tiny, and beside another
# process, as under ctest -j 2, torch's second OpenMP thread spin-waits for
# a core: on the 2-core CI machine six round trips of test_exporter.py took
# 164.7 s of CPU with two threads and 23.9 s with one (377 s and 73 s of
# wall time). Set before any test module imports torch; an OMP_NUM_THREADS
# given in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if MODELS not in sys.path:
    sys.path.insert(0, MODELS)
