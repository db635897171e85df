"""Character classes (the inside of `[...]`) that Python's `re` and ECMA-262, the dialect of the API's
JSON Schema patterns, read alike: a rule on text is written once, and the domain and the OpenAPI
document (whose patterns the gateway's validators compile) enforce the same one. Hence explicit
ranges, never `\\s`, `\\d` or `\\w` (each dialect has its own idea of them) and no `\\U` escapes:
characters beyond the Basic Multilingual Plane are written as themselves.
tests/unit/domain/test_text.py holds the classes to this Python's Unicode database.
"""

from __future__ import annotations

# Unicode Cc: C0 and C1 controls, and DEL.
CONTROL = r"\x00-\x1f\x7f-\x9f"
# What str.isspace() calls whitespace, so what str.strip() trims.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Unicode Cf: invisible format characters (right-to-left overrides, zero widths, tags...).
FORMAT = (
    r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
NUL = r"\x00"
