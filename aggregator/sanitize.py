"""Text and HTML hygiene shared by parsing, filtering and rendering.

Untrusted HTML goes through nh3 (Ammonia); what remains here is the handful of
text transformations no library does for us in one call.
"""

from __future__ import annotations

import html
import re

# Characters XML 1.0 forbids anywhere in a document (C0 controls but tab/LF/CR,
# lone surrogates, U+FFFE/U+FFFF). lxml refuses them, readers choke on them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def strip_xml_illegal(text: str) -> str:
    """Remove the characters XML 1.0 cannot carry."""
    return _XML_ILLEGAL.sub("", text)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:
        return _SPACE.sub(" ", fragment).strip()
    without_tags = _TAG.sub(" ", fragment)
    return _SPACE.sub(" ", html.unescape(without_tags)).strip()
