"""The documentation site: the generated CLI page is current and every page is in the nav."""

import re
from pathlib import Path

import yaml

from ia_world_app.cli import CLI_DOCS, COMMANDS, REGENERATE_CLI_DOCS, cli_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_page_matches_the_schema_help():
    page = (ROOT / CLI_DOCS).read_text()
    assert page == cli_markdown(), f"{CLI_DOCS} is stale: regenerate with {REGENERATE_CLI_DOCS}"
    for command in COMMANDS:
        assert f"\n## {command}\n" in page and f"usage: ia-world {command} " in page


def nav_pages(entries) -> list[str]:
    """Every page path named in mkdocs.yml's nav (nested sections flattened)."""
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_docs_page_is_in_the_site_nav_and_every_nav_page_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == pages


def test_readme_stays_short_and_links_only_to_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "README.md: measurements go to docs/results/<page>.md"
    links = re.findall(r"\]\(((?:docs/)[^)#]+)", readme)
    assert links and all((ROOT / link).exists() for link in links), links
