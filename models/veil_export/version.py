__version__ = "1.0"
SCHEMA_VERSION = 1
