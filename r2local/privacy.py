"""Redaction before any cloud call, and restoring the placeholders afterwards.

E-mail addresses, phone numbers, IP addresses, API-key-like secrets, card
numbers (Luhn-checked) and the user's own patterns become placeholders such as
``[EMAIL_1]``; the same value gets the same placeholder within one call, and
the reply has the placeholders put back. Only placeholders leave the machine.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from r2local import keys
from r2local.backends import Message

# Secrets first: a key can contain digit runs that look like phone or card numbers.
SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\bsk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{16,}",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
    r"\bAIza[0-9A-Za-z_\-]{35}\b",
    r"\bhf_[A-Za-z0-9]{30,}\b",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    r"\b[0-9a-fA-F]{32,}\b",  # long hex: hashes of secrets, tokens, private keys
    # Long token-like runs that mix letters and digits (not words; "/" left out
    # so that file paths stay readable).
    r"(?<![A-Za-z0-9+=_\-])(?=[A-Za-z0-9+_\-]*\d)(?=[A-Za-z0-9+_\-]*[A-Za-z])[A-Za-z0-9+_\-]{32,}={0,2}",
]
# "password: hunter2" and the like: the value is the secret, whatever it looks like.
ASSIGNED_SECRET = re.compile(
    r"(?i)\b(pass(?:word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
    r"(\s*[:=]\s*)([\"']?)([^\s\"',;]{3,}[^\s\"',;.!?)])\3"
)
EMAIL = r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"
# A run of digit groups (one space or hyphen between groups); cards are found inside it.
DIGIT_RUN = re.compile(r"(?<!\d)(?<!\d\.)\d+(?:[ \-]\d+)*(?!\d|\.\d)")
IPV4 = r"(?<!\d)(?<!\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)"
IPV6 = r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![0-9A-Fa-f:])"
PHONE = [
    r"(?<!\w)\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}(?!\w)",  # (555) 123-4567, 555.123.4567
    r"(?<![\w+])\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}(?!\w)",  # +44 20 7946 0958
]
PLACEHOLDER = re.compile(r"\[?\b(EMAIL|PHONE|IP|SECRET|CARD|PRIVATE)_(\d+)\b\]?")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(run: str, redaction: "Redaction") -> str:
    """Card numbers (13-19 digits, Luhn-valid) among a run of digit groups: the
    longest valid span from each group on, so a card next to other numbers is found."""
    parts = re.split(r"([ \-])", run)
    groups, seps = parts[0::2], parts[1::2] + [""]
    out, i = [], 0
    while i < len(groups):
        for j in range(len(groups) - 1, i - 1, -1):
            digits = "".join(groups[i : j + 1])
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                span = "".join(g + s for g, s in zip(groups[i:j], seps[i:j])) + groups[j]
                out.append(redaction.placeholder("CARD", span) + seps[j])
                i = j + 1
                break
        else:
            out.append(groups[i] + seps[i])
            i += 1
    return "".join(out)


def _ipv6(match: str) -> bool:
    if match.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", match):
        return False
    try:
        ipaddress.IPv6Address(match.split("%")[0])
    except ValueError:
        return False
    return True


def _phone(match: str) -> bool:
    return 7 <= len(re.sub(r"\D", "", match)) <= 15


@dataclass
class Redaction:
    """What one call's redaction replaced: placeholder -> original, counts by kind."""

    originals: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    _by_value: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def placeholder(self, kind: str, value: str) -> str:
        if value not in self._by_value:
            n = sum(1 for p in self.originals if p.startswith(f"[{kind}_")) + 1
            token = f"[{kind}_{n}]"
            self._by_value[value] = token
            self.originals[token] = value
        self.counts[kind] += 1
        return self._by_value[value]

    def restore(self, text: str) -> str:
        if not self.originals:
            return text

        def put_back(m: re.Match[str]) -> str:
            return self.originals.get(f"[{m.group(1)}_{m.group(2)}]", m.group(0))

        return PLACEHOLDER.sub(put_back, text)


Rule = tuple[str, "re.Pattern[str]", Callable[[str], bool] | None]


class Redactor:
    """Replaces private values with placeholders. Thread-safe (holds no call state)."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        rules: list[Rule] = [("SECRET", re.compile(p), None) for p in SECRET_PATTERNS]
        rules += [("EMAIL", re.compile(EMAIL), None)]
        self._cards_at = len(rules)  # cards after secrets and e-mail, before IPs and phones
        rules += [("IP", re.compile(IPV4), None), ("IP", re.compile(IPV6), _ipv6)]
        rules += [("PHONE", re.compile(p), _phone) for p in PHONE]
        rules += [("PRIVATE", re.compile(p), None) for p in extra_patterns]
        self.rules = rules

    def text(self, text: str, redaction: Redaction) -> str:
        # Keys this process has read are redacted whatever they look like.
        for key in keys.known_keys():
            if key in text:
                text = text.replace(key, redaction.placeholder("SECRET", key))
        text = ASSIGNED_SECRET.sub(
            lambda m: m.group(1) + m.group(2) + m.group(3) + redaction.placeholder("SECRET", m.group(4)) + m.group(3),
            text,
        )
        for kind, pattern, check in self.rules[: self._cards_at]:
            text = pattern.sub(lambda m, k=kind, c=check: _swap(m, k, c, redaction), text)
        text = DIGIT_RUN.sub(lambda m: _cards(m.group(0), redaction), text)
        for kind, pattern, check in self.rules[self._cards_at :]:
            text = pattern.sub(lambda m, k=kind, c=check: _swap(m, k, c, redaction), text)
        return text

    def messages(self, messages: list[Message]) -> tuple[list[Message], Redaction]:
        redaction = Redaction()
        out = [{**m, "content": self.text(m.get("content", ""), redaction)} for m in messages]
        return out, redaction


def _swap(m: re.Match[str], kind: str, check: Callable[[str], bool] | None, redaction: Redaction) -> str:
    value = m.group(0)
    if PLACEHOLDER.fullmatch(value):
        return value
    if check is None or check(value):
        return redaction.placeholder(kind, value)
    # A greedy match can swallow a neighbour (a phone number followed by other
    # digits): try the longest prefix that ends at a separator and passes.
    for cut in reversed([i for i, ch in enumerate(value) if ch in " .-"]):
        if check(value[:cut]):
            return redaction.placeholder(kind, value[:cut]) + value[cut:]
    return value


class StreamRestorer:
    """Puts placeholders back in streamed text, holding back a piece that may be
    the start of a placeholder until the next piece shows what it is."""

    HOLD = 24  # longer than any placeholder

    def __init__(self, redaction: Redaction, emit: Callable[[str], None]) -> None:
        self.redaction = redaction
        self.emit = emit
        self.buf = ""

    def feed(self, text: str) -> None:
        self.buf += text
        cut = self._safe_end()
        if cut > 0:
            out, self.buf = self.buf[:cut], self.buf[cut:]
            self.emit(self.redaction.restore(out))

    def flush(self) -> None:
        if self.buf:
            out, self.buf = self.buf, ""
            self.emit(self.redaction.restore(out))

    def _safe_end(self) -> int:
        tail = self.buf[-self.HOLD :]
        start = len(self.buf) - len(tail)
        bracket = tail.rfind("[")
        if bracket != -1 and "]" not in tail[bracket:]:
            return start + bracket
        m = re.search(r"[A-Z][A-Z0-9_]*$", tail)  # a bare EMAIL_1 in the making
        return start + m.start() if m else len(self.buf)
