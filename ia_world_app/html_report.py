"""A self-contained HTML report: tables, inline base64 PNG plots and GIF videos; no other files."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ia_world.atomic import atomic_write_bytes

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; max-width: 900px; }
img { image-rendering: pixelated; max-width: 100%; }
.note { color: #666; font-style: italic; }
"""


def image_tag(data: bytes, mime: str, caption: str) -> str:
    """A <figure> holding an inline base64 image (PNG plot or animated GIF) and its caption."""
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="data:{mime};base64,{encoded}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def format_cell(value) -> str:
    """A table cell: floats with 3 decimals, everything else as text (escaped)."""
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def table(rows: list[dict], first_column: str) -> str:
    """An HTML table of rows (dicts); columns are the union of keys in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{format_cell(row.get(c, '-'))}</td>" for c in columns)
                   + "</tr>" for row in rows)
    return f'<table data-first="{html.escape(first_column)}"><tr>{head}</tr>{body}</table>'


def note(text: str) -> str:
    """A grey explanatory paragraph."""
    return f'<p class="note">{html.escape(text)}</p>'


def page(title: str, sections: list[tuple[str, list[str]]]) -> str:
    """The whole document: a title and (heading, [html parts]) sections."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>" + "".join(parts)
                   for heading, parts in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def write_page(path: str | Path, title: str, sections: list[tuple[str, list[str]]]) -> Path:
    """Write the report to `path` atomically; returns the path."""
    atomic_write_bytes(path, page(title, sections).encode("utf-8"))
    return Path(path)


IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def markdown_table(lines: list[str]) -> str:
    """An HTML table of a markdown table's lines (header, separator, rows)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    header, body = rows[0], [r for r in rows[2:]]
    return table([dict(zip(header, row)) for row in body], header[0])


def markdown(path: str | Path) -> list[str]:
    """HTML parts of a markdown report (report.py's report.md): its `##` headings, paragraphs,
    tables, and its `![caption](file)` images inlined from the report's folder."""
    path = Path(path)
    parts, block = [], []
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            parts.append(markdown_table(block))
            block = []
        image = IMAGE.match(line.strip())
        if line.startswith("# ") or not line.strip():
            continue
        if line.startswith("#"):
            parts.append(f"<h3>{html.escape(line.lstrip('#').strip())}</h3>")
        elif image and (path.parent / image.group(2)).is_file():
            data = (path.parent / image.group(2)).read_bytes()
            parts.append(image_tag(data, "image/png", image.group(1)))
        else:
            parts.append(note(line))
    return parts
