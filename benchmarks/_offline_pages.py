"""Make the pages that ``asv publish`` writes work without network.

asv 0.6.6's ``index.html`` loads jQuery, flot, bootstrap, stupidtable and
blueimp-md5 from CDNs. Where those cannot be reached (behind a firewall, on
a cluster, the pages read later offline) asv shows only its error page, "One
or more external (JavaScript) dependencies of airspeed velocity failed to
load". asv has no setting for these URLs, so after publishing this copies
``benchmarks/vendor/`` (the same libraries at the versions asv expects, with
their licences; ``vendor/README.md`` says where each file comes from) into
the pages' folder as ``vendor/`` and points every CDN URL of the written HTML
at its copy. ``nox -s bench-publish`` and ``nox -s bench-history`` run it;
after a plain ``asv publish``::

    python benchmarks/_offline_pages.py benchmarks/html

A page that loads a script or stylesheet from a URL without a copy here (a
newer asv, say) is an error, rather than pages that break only offline.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "vendor"

# Each URL of asv 0.6.6's www/index.html -> its copy under vendor/. flot's copies are its sources,
# which the CDN serves minified (npm's flot 0.8.3 has no minified files); the others are the CDN's
# files byte for byte (tests/test_asv_pages.py checks them against the hashes in asv's page).
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"
CDN_COPIES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1/jquery.min.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.min.js": "flot-0.8.3/jquery.flot.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.time.min.js": "flot-0.8.3/jquery.flot.time.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.selection.min.js": "flot-0.8.3/jquery.flot.selection.js",
    f"{_CDNJS}/flot/0.8.3/jquery.flot.categories.min.js": "flot-0.8.3/jquery.flot.categories.js",
    f"{_JSDELIVR}/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "flot-orderbars-1.0.0/jquery.flot.orderBars.js",
    f"{_CDNJS}/stupidtable/1.0.1/stupidtable.min.js": "stupidtable-1.0.1/stupidtable.min.js",
    f"{_CDNJS}/blueimp-md5/2.19.0/js/md5.min.js": "blueimp-md5-2.19.0/md5.min.js",
    f"{_JSDELIVR}/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap-3.1.1/js/bootstrap.min.js",
    f"{_JSDELIVR}/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap-3.1.1/css/bootstrap.min.css",
}

_TAG = re.compile(r"<(?:script|link)\b[^>]*>", flags=re.IGNORECASE)
_URL = re.compile(r"""\b(?P<attribute>src|href)=(?P<quote>["'])(?P<url>(?:https?:)?//[^"']*)(?P=quote)""")
# Attributes that concern only a CDN: the subresource-integrity hash (flot's copies are not the
# minified files it was computed from), and the cross-origin and referrer policies.
_CDN_ATTRIBUTES = re.compile(r"""\s+(?:integrity|crossorigin|referrerpolicy)=(["'])[^"']*\1""", flags=re.IGNORECASE)


def localize_page(html: str) -> str:
    """``html`` with each script and stylesheet URL of :data:`CDN_COPIES` replaced by ``vendor/`` and its copy.

    Raises ``ValueError`` naming a script or stylesheet URL that has no copy.
    """

    def localize_tag(tag: re.Match[str]) -> str:
        url = _URL.search(tag.group())
        if url is None:
            return tag.group()
        if url["url"] not in CDN_COPIES:
            raise ValueError(
                f"the page loads {url['url']!r}, which has no local copy: add the file to benchmarks/vendor/ "
                "and its URL to CDN_COPIES in benchmarks/_offline_pages.py"
            )
        local = f"{url['attribute']}={url['quote']}vendor/{CDN_COPIES[url['url']]}{url['quote']}"
        return _CDN_ATTRIBUTES.sub("", tag.group().replace(url.group(), local))

    return _TAG.sub(localize_tag, html)


def make_pages_offline(html_dir: Path) -> list[Path]:
    """Copy ``benchmarks/vendor/`` into ``html_dir/vendor`` and point the pages there; the pages changed.

    asv writes its pages at the top of ``html_dir``. Running this again on the folder changes nothing.
    """
    if not (html_dir / "index.html").is_file():
        raise ValueError(f"html_dir: expected the folder that asv publish wrote, got {str(html_dir)!r} (no index.html)")
    shutil.copytree(VENDOR, html_dir / "vendor", ignore=shutil.ignore_patterns(".gitattributes"), dirs_exist_ok=True)
    changed = []
    for page in sorted(html_dir.glob("*.html")):
        html = page.read_text(encoding="utf-8")
        localized = localize_page(html)
        if localized != html:
            page.write_text(localized, encoding="utf-8")
            changed.append(page)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, help="the folder asv publish wrote (benchmarks/html)")
    html_dir = parser.parse_args().html_dir
    changed = make_pages_offline(html_dir)
    pages = ", ".join(str(page.relative_to(html_dir)) for page in changed) or "none (already offline)"
    print(f"{html_dir}: scripts and stylesheets from {html_dir / 'vendor'}; pages changed: {pages}")


if __name__ == "__main__":
    main()
