"""aggregator: polls source feeds politely, stores each story once, republishes merged feeds."""

__version__ = "0.1.0"
