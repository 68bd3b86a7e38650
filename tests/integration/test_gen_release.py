"""gen.release on a copy of the example: the generated release.py and overlays are built into
a real release, deployed the versioned way (versions/VSN + a `current` symlink), and
`bin/migrate` and `bin/server` run from there."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_project, free_port, get, release_env, twelve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    """The example with a gen.release'd module (not its hand-written one), built and copied to
    opt/hello/versions/0.1.0 with opt/hello/current pointing at it."""
    tmp = tmp_path_factory.mktemp("gen_release")
    project = copy_project(EXAMPLES / "hello", tmp / "hello")
    (project / "src/hello/release.py").unlink()
    gen = twelve("gen.release", cwd=project)
    assert "* detected SQLAlchemy without Alembic (dependency sqlalchemy)" in gen.stdout
    assert "* using the tables of hello.db:metadata" in gen.stdout
    assert "* creating src/hello/release.py" in gen.stdout
    twelve("release", "--overwrite", "--quiet", cwd=project, env={"TWELVE_ENV": "prod"})
    opt = tmp / "opt" / "hello"
    shutil.copytree(project / "_build/prod/rel/hello", opt / "versions/0.1.0", symlinks=True)
    (opt / "current").symlink_to("versions/0.1.0")
    return opt


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}


def test_the_generated_module_and_overlays_are_in_the_release(deployed):
    root = deployed / "current"
    assert "METADATA = \"hello.db:metadata\"" in (root / "lib/hello/release.py").read_text()
    for script in ("migrate", "server"):
        assert (root / "bin" / script).stat().st_mode & 0o777 == 0o755


def test_migrate_runs_through_the_generated_bin_migrate(deployed, tmp_path):
    env = release_env(tmp_path)
    proc = subprocess.run([str(deployed / "current/bin/migrate")], env=env, text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = tmp_path / "state" / "hello.db"
    assert proc.stdout.strip() == f"migrated sqlite:///{db} (create_all)"
    assert tables(db) == {"counters"}

    # Reached through a symlink to the script itself (e.g. /usr/local/bin/hello-migrate), it
    # still finds bin/hello; and migrating again changes nothing.
    link = tmp_path / "hello-migrate"
    link.symlink_to(deployed / "current/bin/migrate")
    again = subprocess.run([str(link)], env=env, text=True, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert tables(db) == {"counters"}


def test_migrate_reports_configuration_problems_with_exit_78(deployed, tmp_path):
    env = release_env(tmp_path, DATABASE_URL="not a url")
    proc = subprocess.run([str(deployed / "current/bin/migrate")], env=env, text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 78 and "DATABASE_URL" in proc.stderr


def test_server_starts_the_web_process(deployed, tmp_path, nodes):
    port = free_port()
    node = nodes([str(deployed / "current/bin/server")], release_env(tmp_path, PORT=str(port)),
                 port).wait_ready()
    assert get(node.url("/"))[0] == 200
    assert node.terminate() == 0


def test_migrate_of_an_async_app_goes_through_an_async_engine(tmp_path):
    """The FastAPI example's engine is async (DATABASE_URL becomes sqlite+aiosqlite): the
    generated migrate() must create its tables through an async engine."""
    project = copy_project(EXAMPLES / "hello_fastapi", tmp_path / "hello_fastapi")
    (project / "src/hello_fastapi/release.py").unlink()
    gen = twelve("gen.release", cwd=project)
    assert "* using the tables of hello_fastapi.db:Base" in gen.stdout
    twelve("release", "--overwrite", "--quiet", cwd=project, env={"TWELVE_ENV": "prod"})
    db = tmp_path / "state" / "items.db"
    env = release_env(tmp_path, DATABASE_URL=f"sqlite:///{db}")
    proc = subprocess.run([str(project / "_build/prod/rel/hello_fastapi/bin/migrate")],
                          env=env, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"migrated sqlite+aiosqlite:///{db} (create_all)"
    assert tables(db) == {"items"}
