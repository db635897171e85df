"""Finding secrets in log lines: passwords the tests used, access and refresh tokens, verification
codes that were mailed, the code pepper, passwords inside connection URLs, Argon2 password hashes,
and the addresses of the tests' accounts (every one is at example.test)."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from datetime import datetime

from harness import mailpit

JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")
REFRESH_TOKEN = re.compile(r"rt_[\w-]{40,}")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s\"']+:(?!\*\*\*@)[^@/\s\"']+@")
CODE_CONTEXT = re.compile(r"code|verif", re.IGNORECASE)
# A hash with its parameters, salt and digest; "$argon2id$***" is what the logs write instead.
ARGON2_HASH = re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+")
TEST_ADDRESS = re.compile(r"[^\s@\"'<>(),;:]+@example\.test\b", re.IGNORECASE)


def mailed_codes(since: datetime) -> set[str]:
    """The 6-digit codes of every verification email Mailpit received since `since`."""
    codes: set[str] = set()
    query = urllib.parse.quote('subject:"verification code"')
    start = 0
    while True:
        page = mailpit._get(f"/api/v1/search?query={query}&limit=500&start={start}")
        messages = page["messages"]
        for m in messages:
            if datetime.fromisoformat(m["Created"].replace("Z", "+00:00")) < since:
                return codes  # newest first: the rest are older
            if match := re.search(r"(?<!\d)(\d{6})(?!\d)", m["Snippet"]):
                codes.add(match[1])
        start += len(messages)
        if not messages or start >= page["messages_count"]:
            return codes


def _strings(line: str) -> Iterable[str]:
    """The text of a log line to search: a JSON record's values but its timestamp, else the line."""
    _, _, record = line.partition("| ")
    try:
        parsed = json.loads(record)
    except ValueError:
        yield line
        return
    if isinstance(parsed, dict):
        yield from (str(v) for k, v in parsed.items() if k != "ts")
    else:
        yield line


def leaks(lines: Iterable[str], passwords: Iterable[str], codes: set[str], pepper: str) -> list[str]:
    """Every line that shows a secret, with what it shows."""
    found = []
    passwords = [p for p in passwords if p]
    for number, line in enumerate(lines, 1):
        for text in _strings(line):
            what = [f"password {p!r}" for p in passwords if p in text]
            what += ["an access token"] * bool(JWT.search(text))
            what += ["a refresh token"] * bool(REFRESH_TOKEN.search(text))
            what += ["a URL with its password"] * bool(URL_PASSWORD.search(text))
            what += ["the code pepper"] * (pepper in text)
            what += ["an Argon2 hash"] * bool(ARGON2_HASH.search(text))
            what += ["a test account's address"] * bool(TEST_ADDRESS.search(text))
            if CODE_CONTEXT.search(text):
                what += [
                    f"verification code {c}"
                    for c in re.findall(r"(?<![\d.:-])(\d{6})(?![\d.:])", text)
                    if c in codes
                ]
            if what:
                found.append(f"line {number}: {', '.join(sorted(set(what)))}: {line[:200]}")
    return found
