"""The reference app of the size and memory benchmarks: Flask + SQLAlchemy + WhiteNoise."""
