#!/usr/bin/env python3
"""Checks every internal link of the README and the book (docs/), offline.

A link to another page must name a file that exists (a chapter, an image, a file of the
repository such as ../deploy/k8s); a link with a #fragment must name a heading of that page (by
mdBook's rule for heading ids, which GitHub's matches for these pages) or an explicit id. Links
to other sites are not followed: that needs the network, and is no part of CI.

Written by hand rather than with lychee or mdbook-linkcheck: lychee is a long build on two
cores for one step, and mdbook-linkcheck follows the mdbook 0.4 plugin interface, not 0.5's.
This reads the Markdown itself (about a hundred lines, no dependency), so a link is checked as
written, where its author can fix it.

    python3 scripts/check-links.py      # exit 1 and every broken link listed when one is
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ID = re.compile(r"""(?:id|name)=["']([^"']+)["']""")


def heading_id(text: str) -> str:
    """mdBook's `normalize_id`: lower case, alphanumerics, `-` and `_` kept, spaces to `-`."""
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"`", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    out = []
    for c in text.strip().lower():
        if c.isalnum() or c in "-_":
            out.append(c)
        elif c.isspace():
            out.append("-")
    return "".join(out)


def outside_code(lines):
    """The lines of a Markdown page that are not in a fenced code block."""
    fenced = False
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(page: Path) -> set:
    ids = set()
    seen = {}
    for _, line in outside_code(page.read_text().splitlines()):
        match = HEADING.match(line)
        if match:
            base = heading_id(match.group(2))
            # A repeated heading gets -1, -2 … as mdBook and GitHub number them.
            n = seen.get(base, 0)
            ids.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
        ids.update(EXPLICIT_ID.findall(line))
    return ids


def pages():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))


def main() -> int:
    cache = {}
    broken = []
    checked = 0
    for page in pages():
        for number, line in outside_code(page.read_text().splitlines()):
            # Inline code is not a link.
            line = re.sub(r"`[^`]*`", "", line)
            for match in LINK.finditer(line):
                target = match.group(1) or match.group(2)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # another site, or mailto:
                checked += 1
                path, _, fragment = target.partition("#")
                file = (page.parent / path).resolve() if path else page
                where = f"{page.relative_to(ROOT)}:{number}: {target}"
                if not file.exists():
                    broken.append(f"{where} (no such file)")
                    continue
                if fragment and file.suffix == ".md":
                    if file not in cache:
                        cache[file] = anchors(file)
                    if fragment not in cache[file]:
                        broken.append(f"{where} (no heading #{fragment} in {file.relative_to(ROOT)})")
    for link in broken:
        print(link)
    print(f"{checked} internal links checked, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
