__version__ = "1.1"  # 1.1: calib_range over the range set (training set)
SCHEMA_VERSION = 1
