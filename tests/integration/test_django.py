"""The Django example (examples/hello_django) as a prod release, built once for this module:
settings from config/runtime.py, `eval` running migrate and createsuperuser through the
release helpers, the admin with its digested, immutably cached CSS, a model written through
the admin and read back through `eval` (and the other way round), SQLite by default and the
very same release over PostgreSQL. Other servers: the cross-example matrix."""
from __future__ import annotations

import gzip
import http.cookiejar
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import Release, get

pytestmark = pytest.mark.slow

NAME = "hello_django"
SECRET_KEY = "django-test-" + "k" * 60  # a valid SECRET_KEY for tests (never a real one)
IMMUTABLE = "public, max-age=31536000, immutable"
DIGESTED_CSS = re.compile(r'<link rel="stylesheet" href="(/static/admin/css/base-[0-9a-f]{32}\.css)"')
SUPERUSER = {"DJANGO_SUPERUSER_USERNAME": "admin", "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
             "DJANGO_SUPERUSER_PASSWORD": "correct-horse-battery-staple"}


class DjangoRelease(Release):
    """conftest's Release for bin/hello_django, configured as the example's runtime.py wants;
    the database is the default one, under STATE_DIRECTORY."""

    def __init__(self, root: Path, tmp: Path, **env: str) -> None:
        super().__init__(root, tmp, SECRET_KEY=SECRET_KEY, **env)
        del self.env["DATABASE_URL"]

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 **extra_env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.root / "bin" / NAME), *args], text=True,
                              capture_output=True, timeout=120, input=input,
                              env=dict(self.env, **extra_env))
        if check:
            assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc

    def manage(self, *args: str, **extra_env: str) -> str:
        """A management command through the release helper; its stdout."""
        code = f"hello_django.release.manage{args!r}"
        return self("eval", code, check=True, **extra_env).stdout


@pytest.fixture(scope="module")
def django_release(example_release) -> Path:
    return example_release(NAME)


@pytest.fixture
def release(django_release, tmp_path):
    rel = DjangoRelease(django_release, tmp_path)
    yield rel
    rel.cleanup()


class Browser:
    """Cookies and Django's CSRF token, as a browser logging in to the admin would have."""

    def __init__(self, rel: DjangoRelease) -> None:
        self.rel = rel
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.rel.url(path), timeout=10) as r:
            return r.read().decode()

    def submit(self, path: str, fields: dict) -> tuple[str, str]:
        """GET the form at ``path``, POST it with ``fields`` and its CSRF token; return the URL
        landed on (after the redirect) and its page."""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(path))
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **fields})
        with self.opener.open(self.rel.url(path), data=data.encode(), timeout=10) as r:
            return r.url, r.read().decode()


def test_admin_with_digested_css_and_a_model_round_trip(release):
    migrated = release.manage("migrate", "--noinput")
    assert "Applying notes.0001_initial... OK" in migrated
    assert release("eval", "hello_django.release.migrate()", check=True).stdout.endswith(
        "No migrations to apply.\n")
    assert "Superuser created successfully." in release.manage(
        "createsuperuser", "--noinput", **SUPERUSER)
    manifest = release.root / "lib" / "hello_django" / "staticfiles" / "cache_manifest.json"
    assert manifest.is_file(), "assets.deploy (collectstatic, digest) ran before assemble"

    release.daemon()
    status, body, _ = get(release.url("/admin/login/"))
    assert status == 200
    css = DIGESTED_CSS.search(body.decode())
    assert css, f"the admin's CSS is not linked by a digested name:\n{body.decode()[:1500]}"
    status, plain, headers = get(release.url(css.group(1)))
    assert status == 200 and headers["Cache-Control"] == IMMUTABLE
    request = urllib.request.Request(release.url(css.group(1)),
                                     headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Cache-Control"] == IMMUTABLE
        assert gzip.decompress(r.read()) == plain
    # Only fingerprinted names are immutable; anything else keeps a short max-age.
    assert get(release.url("/static/admin/css/base.css"))[2]["Cache-Control"] != IMMUTABLE

    # Written through the admin (login, CSRF, session), read back in a fresh `eval` system.
    browser = Browser(release)
    landed, page = browser.submit("/admin/login/?next=/admin/",
                                  {"username": SUPERUSER["DJANGO_SUPERUSER_USERNAME"],
                                   "password": SUPERUSER["DJANGO_SUPERUSER_PASSWORD"],
                                   "next": "/admin/"})
    assert landed == release.url("/admin/") and "Site administration" in page
    landed, _ = browser.submit("/admin/notes/note/add/", {"text": "from the admin", "_save": "1"})
    assert landed == release.url("/admin/notes/note/")
    read = "from notes.models import Note; print([n.text for n in Note.objects.all()])"
    assert release.manage("shell", "-c", read).strip().endswith("['from the admin']")

    # Written in an `eval` system, read back through the running server.
    release.manage("shell", "-c", "from notes.models import Note; Note.objects.create(text='from eval')")
    status, body, _ = get(release.url("/notes/"))
    assert status == 200
    assert [n["text"] for n in json.loads(body)["notes"]] == ["from eval", "from the admin"]
    home = get(release.url("/"))[1].decode()
    assert "from eval" in home and re.search(r'/static/notes/css/notes-[0-9a-f]{32}\.css', home)

    # DEBUG is off in prod (no technical 404 page) and ALLOWED_HOSTS holds.
    status, body, _ = get(release.url("/no-such-page"))
    assert status == 404 and b"URLconf" not in body
    evil = urllib.request.Request(release.url("/"), headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(evil, timeout=10)
    assert refused.value.code == 400

    stop = release("stop")
    assert (stop.returncode, stop.stdout) == (0, "")
    assert release("pid").returncode == 3


def test_the_environment_is_declared_and_checked(release):
    listed = release("env", check=True).stdout
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows["SECRET_KEY"][1:] == ["secret", "-", "yes", "yes", "yes", "environment"]
    assert rows["DEBUG"][1:3] == ["bool", "false"]
    assert rows["ALLOWED_HOSTS"][1:3] == ["list", "localhost,127.0.0.1"]
    assert rows["DATABASE_URL"][1] == "url"

    bad = release("check", SECRET_KEY="too-short", DATABASE_URL="mysql://db/app",
                  DEBUG="maybe")
    assert bad.returncode == 78, bad.stderr
    for name in ("SECRET_KEY", "DATABASE_URL", "DEBUG"):
        assert re.search(rf"^  {name} ", bad.stderr, re.M), bad.stderr
    assert "too-short" not in bad.stderr + bad.stdout, "a secret is never shown"


def test_a_prod_release_warns_when_the_django_settings_have_debug_on(release):
    from twelve.runtime.system import DJANGO_DEBUG

    warning = DJANGO_DEBUG.format(module="hello_django.settings")
    quiet = release("check", check=True)
    assert warning not in quiet.stderr
    loud = release("check", DEBUG="true", check=True)
    assert loud.stderr.startswith(warning + "\n"), loud.stderr
    assert "Point DJANGO_SETTINGS_MODULE at the production settings" in loud.stderr

    # The server's boot, not only `check`: the warning is in the node's log.
    release.env["DEBUG"] = "true"
    release.daemon()
    assert get(release.url("/admin/login/"))[0] == 200
    assert release("stop").returncode == 0
    logs = "".join(p.read_text() for p in (Path(release.env["RELEASE_TMP"]) / "log").glob("*"))
    assert logs.count(warning) == 1, logs


def test_rollback_and_other_management_commands(release):
    release("eval", "hello_django.release.migrate()", check=True)
    rolled = release("eval", "hello_django.release.rollback('notes', 'zero')", check=True)
    assert "Unapplying notes.0001_initial... OK" in rolled.stdout
    deploy = release("eval", "hello_django.release.manage('check', '--deploy')")
    assert deploy.returncode == 0 and "security.W004" in deploy.stderr  # HSTS: a warning
    failing = release("eval", "hello_django.release.rollback('nope', 'zero')")
    assert failing.returncode == 1 and "No installed app with label 'nope'" in failing.stderr


def test_same_release_over_postgresql(release, postgres_server):
    release.env["DATABASE_URL"] = postgres_server.create_database(NAME)
    assert "Applying notes.0001_initial... OK" in release(
        "eval", "hello_django.release.migrate()", check=True).stdout
    release.daemon()
    counts = [json.loads(get(release.url("/visits"))[1])["visits"] for _ in range(3)]
    assert counts == [1, 2, 3]
    assert postgres_server.psql("SELECT value FROM notes_counter WHERE name = 'visits'",
                                database=NAME) == "3\n"
    assert get(release.url("/admin/login/"))[0] == 200
    assert release("stop").returncode == 0
