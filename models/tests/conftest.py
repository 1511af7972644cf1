import os
import sys

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if MODELS not in sys.path:
    sys.path.insert(0, MODELS)
