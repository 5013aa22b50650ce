"""The frame every self-contained HTML page of the package shares (run report, comparison, run
history): images inlined as base64 ``data:`` URLs and the style sheet inline, so a page loads
nothing from anywhere, opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
from html import escape


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` carrying ``png`` inline."""
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{escape(alt)}">'


def document(title: str, css: str, body: list[str]) -> str:
    """A whole page: ``body`` is a list of HTML fragments, joined by newlines."""
    head = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>", f"<style>{css}</style></head><body>"]
    return "\n".join(head + body + ["</body></html>"]) + "\n"
