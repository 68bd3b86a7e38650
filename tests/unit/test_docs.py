"""Everything a user touches is documented: the docs are checked against the declarations."""
from __future__ import annotations

import re
from pathlib import Path

from twelve.project import settings_table
from twelve.runtime.commands import COMMANDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_table_in_docs_is_current():
    text = (DOCS / "configuration.md").read_text()
    block = re.search(r"<!-- settings-table.*?-->\n(.*?)\n<!-- /settings-table -->", text, re.S)
    assert block and block.group(1) == settings_table(), \
        "regenerate the table in docs/configuration.md from twelve.project.settings_table()"


def test_every_launcher_command_is_documented():
    text = (DOCS / "commands.md").read_text()
    for command in COMMANDS:
        assert f"`{command.name}" in text, command.name


def test_readme_starts_with_the_two_commands():
    readme = (DOCS.parent / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block
