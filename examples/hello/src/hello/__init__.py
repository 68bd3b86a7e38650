"""hello: the example app of twelve (Flask + SQLAlchemy)."""
