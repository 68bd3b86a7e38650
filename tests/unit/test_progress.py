"""Progress: status lines on a terminal, plain lines otherwise, phases timed, nothing when quiet."""
from __future__ import annotations

import subprocess

import pytest

from twelve.builder import progress
from twelve.builder.progress import Progress, uv_install_status


def child(script: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_plain_output_shows_lines_and_beats_while_silent(monkeypatch):
    monkeypatch.setattr(progress, "FIRST_BEAT", 0.3)
    monkeypatch.setattr(progress, "REDRAW", 0.1)
    lines: list[str] = []
    out = Progress(lines.append, live=False).watch("npm ci", child("echo one; sleep 1; echo two"),
                                                    show_output=True)
    assert out == "one\ntwo\n"
    assert lines[0] == "one" and lines[-1] == "two"
    assert any(line.startswith("  … npm ci: still running (") for line in lines[1:-1])


def test_parsed_output_becomes_a_status_and_quiet_shows_nothing():
    script = "echo 'Resolved 2 packages in 3ms'; echo 'Downloading numpy (16.1MiB)'; " \
             "echo ' Downloaded numpy'; echo 'Installed 2 packages in 9ms'"
    lines: list[str] = []
    Progress(lines.append, live=False).watch("installing 2 locked packages", child(script),
                                              show_output=False, parse=uv_install_status)
    assert lines == ["  installing 2 locked packages: resolved 2 packages",
                     "  installing 2 locked packages: downloading numpy (16.1MiB)",
                     "  installing 2 locked packages: downloaded 1 of 1 large packages",
                     "  installing 2 locked packages: installed 2 packages"]
    silent: list[str] = []
    Progress(silent.append, quiet=True).watch("x", child(script), show_output=True)
    assert silent == []


def test_a_failing_child_returns_its_output_and_code():
    proc = child("echo broken; exit 3")
    assert Progress(lambda line: None, live=False).watch("x", proc, show_output=False) \
        == "broken\n"
    assert proc.returncode == 3


def test_the_summary_nests_phases():
    watching = Progress(lambda line: None, live=False)
    with watching.phase("assets.deploy"):
        pass
    with watching.phase("assemble"):
        with watching.phase("python"):
            pass
        with watching.phase("dependencies"):
            pass
    with watching.phase("tar"):
        pass
    summary = watching.summary()
    assert summary.startswith("* done in ")
    names = summary.split("(", 1)[1]
    for token in ("assets.deploy 0.0 s, assemble ", " [python 0.0 s, dependencies 0.0 s], tar"):
        assert token in names, summary


def test_current_is_the_build_s_progress_only_inside_using():
    watching = Progress(lambda line: None, live=False)
    assert progress.current() is None
    with progress.using(watching):
        assert progress.current() is watching
    assert progress.current() is None


@pytest.mark.parametrize("line, status", [
    ("Prepared 1 package in 4ms", "prepared 1 package"),
    ("Built 3 packages in 1s", "built 3 packages"),
    ("Using CPython 3.11.7", None),
])
def test_uv_lines(line, status):
    assert uv_install_status(line, {}) == status


def test_shown_output_keeps_its_stream(capsys):
    proc = subprocess.Popen(["sh", "-c", "echo out; echo err >&2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    shown: list[str] = []
    Progress(shown.append, live=False).watch("x", proc, show_output=True)
    assert shown == ["out"]
    assert capsys.readouterr().err == "err\n"
