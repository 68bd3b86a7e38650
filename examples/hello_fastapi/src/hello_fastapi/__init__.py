"""hello_fastapi: twelve's FastAPI example (async SQLAlchemy over SQLite or PostgreSQL)."""
