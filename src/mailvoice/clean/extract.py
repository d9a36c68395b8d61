"""Extract exactly the author's own words from one sent email.

Pure functions, string in / string out. See docs/cleaning.md for the conventions (the sign-off such as
"Thanks,\\nDana" is *kept*: it is voice) and bench/cleaning_score.py for the measurements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from mailvoice.clean import _rules as rules
from mailvoice.controls import strip_controls
from mailvoice.clean._html import has_quote_container, html_to_text as _html_to_text

__all__ = ["Zone", "Extraction", "extract_author_text", "html_to_text", "learn_signatures"]

KINDS = ("quote", "forward", "signature", "device_footer", "disclaimer", "html")


@dataclass(frozen=True)
class Zone:
    kind: str  # 'quote' | 'forward' | 'signature' | 'device_footer' | 'disclaimer' | 'html'
    text: str  # the removed text
    reason: str  # short human reason


@dataclass(frozen=True)
class Extraction:
    text: str  # kept author text, whitespace-normalised, sign-off kept
    removed: tuple[Zone, ...]
    quoted: str | None  # text of the message replied to (markers and its header stripped)
    is_forward: bool


def html_to_text(html: str) -> str:
    """HTML mail body -> plain text (paragraph breaks kept; style/script dropped; br/p/div/lists)."""
    return strip_controls(_html_to_text(html or ""))


# ---------------------------------------------------------------- quote / forward scan


def _quote_block_end(lines: list[str], i: int) -> int:
    """End (exclusive) of the '>'-quoted block starting at i, with wrapped continuation lines."""
    n = len(lines)
    j = i
    while j < n:
        ln = lines[j]
        if rules.QUOTE_LINE.match(ln):
            j += 1
            continue
        if not ln.strip():
            k = j
            while k < n and not lines[k].strip():
                k += 1
            if k < n and rules.QUOTE_LINE.match(lines[k]):
                j = k
                continue
            break
        # an unquoted line squeezed between quoted lines is a re-wrapped quote line
        if j > i and j + 1 < n and rules.QUOTE_LINE.match(lines[j - 1]) and rules.QUOTE_LINE.match(lines[j + 1]):
            j += 1
            continue
        break
    return j


def _extend_up(lines: list[str], start: int, floor: int) -> int:
    """Move a cut point up over blank lines, separator lines and an 'Original Message' line."""
    k = start
    while k - 1 >= floor and (not lines[k - 1].strip() or rules.SEPARATOR.match(lines[k - 1]) or rules.is_original_marker(lines[k - 1])):
        k -= 1
    # do not swallow blank lines that belong to the author (keeps zones tidy)
    while k < start and not lines[k].strip():
        k += 1
    return k


def _scan_quotes(lines: list[str]) -> tuple[list[tuple[str, int, int, str]], bool]:
    """Return quote/forward zones as (kind, start, end, reason) and whether the mail is a forward."""
    zones: list[tuple[str, int, int, str]] = []
    n = len(lines)
    i = 0
    floor = 0
    while i < n:
        ln = lines[i]
        if not ln.strip():
            i += 1
            continue
        if rules.QUOTE_LINE.match(ln):
            j = _quote_block_end(lines, i)
            # a forwarded message inside a quote container (Gmail HTML forward)
            first = next((rules.unquote(x) for x in lines[i:j] if rules.unquote(x).strip()), "")
            if rules.is_forward_marker(first) and not zones:
                zones.append(("forward", i, n, "forwarded message (quoted container)"))
                return zones, True
            zones.append(("quote", i, j, "line starts with '>'"))
            i = floor = j
            continue
        if rules.is_forward_marker(ln):
            zones.append(("forward", _extend_up(lines, i, floor), n, "forwarded-message marker"))
            return zones, True
        if rules.is_original_marker(ln):
            s = _extend_up(lines, i, floor)
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            fwd = False
            if j < n:
                hb = rules.header_block_at(lines, j)
                fwd = bool(hb and hb[2])
            zones.append(("forward" if fwd else "quote", s, n, "'Original Message' separator"))
            return zones, fwd
        k = rules.wrote_header_at(lines, i)
        if k:
            j = i + k
            while j < n and not lines[j].strip():
                j += 1
            if j < n and rules.QUOTE_LINE.match(lines[j]):
                end = _quote_block_end(lines, j)
                zones.append(("quote", i, end, "'On … wrote:' header with quoted lines"))
                i = floor = end
                continue
            zones.append(("quote", _extend_up(lines, i, floor), n, "'On … wrote:' header"))
            return zones, False
        hb = rules.header_block_at(lines, i)
        if hb:
            s, _e, fwd = hb
            kind = "forward" if fwd else "quote"
            zones.append((kind, _extend_up(lines, s, floor), n, "From:/Sent:/To:/Subject: header block" + (" (FW: subject)" if fwd else "")))
            return zones, fwd
        i += 1
    return zones, False


def _quoted_context(lines: list[str], start: int, end: int) -> str | None:
    """Text of the first quoted message: markers stripped, its own header removed, its quotes dropped."""
    block = lines[start:end]
    for _ in range(3):
        nonblank = [x for x in block if x.strip()]
        if nonblank and all(rules.QUOTE_LINE.match(x) or not x.strip() for x in block):
            block = [rules.strip_quote_level(x) for x in block]
        # drop the header of the quoted message
        changed = True
        while changed and block:
            changed = False
            while block and (not block[0].strip() or rules.SEPARATOR.match(block[0]) or rules.is_original_marker(block[0]) or rules.is_forward_marker(block[0])):
                block = block[1:]
                changed = True
            if not block:
                break
            k = rules.wrote_header_at(block, 0)
            if k:
                block = block[k:]
                changed = True
                continue
            hb = rules.header_block_at(block, 0)
            if hb:
                block = block[hb[1]:]
                changed = True
        if not block or not all(rules.QUOTE_LINE.match(x) or not x.strip() for x in block):
            break
    if not block:
        return None
    inner = _extract_plain("\n".join(block), (), depth=1)
    return inner.text or None


# ---------------------------------------------------------------- signature stage


def _norm_block(lines: Iterable[str]) -> list[str]:
    return [" ".join(x.split()) for x in lines if x.strip()]


def _apply_learned(lines: list[str], author: list[int], label: dict[int, tuple[str, str]], signatures: Sequence[str]) -> None:
    if not signatures:
        return
    nb = [i for i in author if lines[i].strip() and i not in label]
    normed = [" ".join(lines[i].split()) for i in nb]
    for sig in sorted(signatures, key=len, reverse=True):
        sl = _norm_block(sig.split("\n"))
        if not sl or len(sl) > len(normed):
            continue
        for s in range(len(normed) - len(sl), -1, -1):
            if normed[s : s + len(sl)] == sl:
                for i in nb[s : s + len(sl)]:
                    label[i] = ("signature", "learned signature: repeats across the user's mail")
                lo, hi = nb[s], nb[s + len(sl) - 1]
                for i in author:
                    if lo <= i <= hi and i not in label:
                        label[i] = ("signature", "learned signature: repeats across the user's mail")
                break


def _is_ruled_signature(block: list[str]) -> bool:
    """The lines between a rule ('====', '____', '*---*') and the closing rule or the end: a name then
    contact lines (name, title, department, institution, address, 'Voice:'/'FAX:'/'Internet:'), or a
    first line that is itself a contact line with an address, phone or URL ('Jo Bloggs | Acme |
    www.acme.ie | Tel: …'); box borders ('* … *', '| … |') are ignored."""
    core = [t.strip().strip("*|").strip() for t in block]
    core = [t for t in core if t]
    if not core or len(core) > 12:
        return False
    if (
        rules.is_name_line(core[0])
        and not rules._URL.search(core[0])
        and all(rules.is_sig_like(t) for t in core)
        and any(rules.contact_score(t) >= 2 for t in core[1:])
    ):
        return True
    return rules.is_name_then_contact(core[0])


def _full_name_after_signoff(lines: list[str], rest: list[int]) -> int | None:
    """The last author line is a full name ('Marc Baaden') extending the sign-off name above it
    ('Thanks,\nMarc'): the name line of the user's signature, not a second sign-off."""
    nb = [i for i in rest if lines[i].strip()]
    if len(nb) < 3:
        return None
    last = nb[-1]
    words = lines[last].split()
    if not (2 <= len(words) <= 4 and rules.is_name_line(lines[last]) and not rules.is_closing(lines[last])):
        return None
    first = words[0].strip("-~/ .,").lower()
    for k in range(len(nb) - 2, -1, -1):
        i = nb[k]
        if not rules.is_closing(lines[i]):
            continue
        m = rules.CLOSING_LINE.match(lines[i].strip())
        name = (m.group("name") or "").strip(" ,.!") if m else ""
        if not name and nb[k + 1] != last and rules.is_name_line(lines[nb[k + 1]]):
            name = lines[nb[k + 1]].strip(" -~/,.")
        if name and len(name.split()) < len(words) and name.split()[0].lower() == first:
            return last
        return None
    return None


def _signature_stage(lines: list[str], author: list[int], label: dict[int, tuple[str, str]]) -> None:
    def cut(from_pos: int, kind: str, reason: str, upto: int | None = None) -> None:
        for i in author[from_pos : upto if upto is not None else len(author)]:
            if i not in label:
                label[i] = (kind, reason)

    # pass 1: hard markers, first one wins
    nonblank_pos = [p for p, i in enumerate(author) if lines[i].strip() and i not in label]
    first_para_end = None
    for p in range(len(author)):
        if not lines[author[p]].strip() and nonblank_pos and p > nonblank_pos[0]:
            first_para_end = p
            break
    for p in nonblank_pos:
        if author[p] in label:  # inside a ruled block cut below
            continue
        ln = lines[author[p]]
        if rules.SIG_DELIM.match(ln):
            cut(p, "signature", "'-- ' signature delimiter")
            break
        if rules.is_device_footer(ln):
            cut(p, "device_footer", "device footer ('Sent from my …')", p + 1)
            cut(p + 1, "quote", "text below a device footer (unmarked original message)")
            break
        if rules.is_list_footer_start(ln):
            cut(p, "signature", "mailing-list footer")
            break
        if rules.is_disclaimer_start(ln, " ".join(lines[author[q]] for q in nonblank_pos if p < q <= p + 3)):
            rest_nonblank = [q for q in nonblank_pos if q > p]
            if p == nonblank_pos[0] and first_para_end is not None and any(q > first_para_end for q in rest_nonblank):
                cut(p, "disclaimer", "legal/caution banner", first_para_end)
                continue
            cut(p, "disclaimer", "legal disclaimer")
            break
        if rules.SEPARATOR.match(ln) and set(ln.strip()) <= set("-_ "):
            after = [q for q in nonblank_pos if q > p]
            tail = [lines[author[q]] for q in after]
            if tail and len(tail) <= 15 and (
                rules.is_device_footer(tail[0])
                or any(rules.is_list_footer(t) for t in tail)
                or rules.is_disclaimer_start(tail[0], " ".join(tail[1:4]))
                or (rules.is_name_line(tail[0]) and all(rules.is_sig_like(t) for t in tail) and any(rules.contact_score(t) >= 2 for t in tail))
            ):
                kind = "device_footer" if rules.is_device_footer(tail[0]) and len(tail) == 1 else "signature"
                cut(p, kind, "separator line followed by a signature/footer block")
                break
        if rules.SEPARATOR.match(ln):
            after = [q for q in nonblank_pos if q > p]
            tail = [lines[author[q]] for q in after]
            if tail and rules.looks_like_disclaimer(" ".join(t.strip() for t in tail[:4])):
                cut(p, "disclaimer", "separator line followed by a legal disclaimer")
                break
            close = next((k for k, q in enumerate(after) if rules.SEPARATOR.match(lines[author[q]])), None)
            block = tail[:close] if close is not None else tail
            below = tail[close + 1 :] if close is not None else []
            # what follows the box up to the next rule (a list footer's) must not be prose: the box ends the message
            below = below[: next((k for k, t in enumerate(below) if rules.SEPARATOR.match(t)), len(below))]
            if block and len(block) <= 15 and _is_ruled_signature(block) and all(rules.is_sig_like(t) for t in below):
                if close is None:
                    cut(p, "signature", "ruled signature block")
                    break
                cut(p, "signature", "ruled signature block", after[close] + 1)

    # pass 2: contact block after the sign-off
    rest = [author[p] for p in range(len(author)) if author[p] not in label]
    nb = [i for i in rest if lines[i].strip()]
    if not nb:
        return
    window = nb[-12:]
    start_block = None
    reason = ""
    for idx, i in enumerate(window):
        if rules.is_closing(lines[i]) and all(rules.is_sig_like(lines[x]) for x in window[idx + 1 :]):
            after = window[idx + 1 :]
            inline_name = not rules._CLOSING_ONLY.match(lines[i].strip())
            if after and not inline_name and rules.is_name_line(lines[after[0]]):
                after = after[1:]
            if after and any(rules.contact_score(lines[x]) >= 1 for x in after):
                start_block = after[0]
                reason = "contact block after the sign-off"
            break
    if start_block is None:
        for idx, i in enumerate(window):
            if not rules.is_name_line(lines[i]) or rules.is_closing(lines[i]):
                continue
            after = window[idx + 1 :]
            if not after or len(after) > 8 or not all(rules.is_sig_like(lines[x]) for x in after):
                continue
            prev = [x for x in rest if x < i]
            strong = sum(1 for x in after if rules.contact_score(lines[x]) >= 2)
            if prev and lines[prev[-1]].strip() and not rules.is_closing(lines[prev[-1]]) and not (strong and len(after) <= 3):
                continue
            if any(rules.is_closing(lines[x]) or rules.SEPARATOR.match(lines[x]) or len(lines[x]) - len(lines[x].lstrip()) > 8 or lines[x].rstrip().endswith(":") or rules.is_prose_like(lines[x]) for x in after):
                continue
            strong = sum(1 for x in after if rules.contact_score(lines[x]) >= 2)
            weak = sum(1 for x in after if rules.contact_score(lines[x]) >= 1)
            if strong >= 1 or weak >= 2:
                start_block = after[0]
                reason = "contact block after the sign-off name"
                break
    if start_block is None:
        # the last paragraph is a contact block whose top line is not a recognisable name (a mangled or
        # decorated name, a department): several short non-prose lines, at least two of them strong
        # contact lines (title / e-mail / URL / phone) with at least one e-mail, URL or phone. The whole
        # paragraph goes; a leading closing or name line stays (sign-off convention).
        para: list[int] = []
        for i in reversed(rest):
            if not lines[i].strip():
                if para:
                    break
                continue
            para.append(i)
        para.reverse()
        above = [x for x in nb if x < (para[0] if para else 0)]
        if 3 <= len(para) <= 8 and above and all(rules.is_sig_like(lines[x]) for x in para):
            texts = [lines[x].strip() for x in para]
            strong = sum(1 for t in texts if rules.contact_score(t) >= 2)
            hard = any(rules._EMAILISH.search(t) or rules._URL.search(t) or rules._PHONE.search(t) for t in texts)
            prose = any(t.endswith(":") or rules.SEPARATOR.match(t) or rules.is_prose_like(t) for t in texts)
            if strong >= 2 and hard and not prose:
                k = 0
                if rules.is_closing(texts[0]):
                    k = 1
                    if rules._CLOSING_ONLY.match(texts[0]) and len(texts) > 1 and rules.is_name_line(texts[1]):
                        k = 2
                elif rules.is_name_line(texts[0]):
                    k = 1
                if k < len(para):
                    start_block = para[k]
                    reason = "contact block in the last paragraph"
    if start_block is None:
        # trailing contact lines with no name (an address + phone at the very end)
        run: list[int] = []
        for i in reversed(nb):
            if rules.contact_score(lines[i]) >= 2 and len(lines[i].split()) <= 6:
                run.append(i)
            else:
                break
        run_text = " ".join(lines[i] for i in run)
        if len(run) >= 2 and rules._EMAILISH.search(run_text) and (rules._PHONE.search(run_text) or rules._URL.search(run_text)):
            top = run[-1]
            before = [x for x in rest if x < top]
            if len(nb) > len(run) and (not before or not lines[before[-1]].strip() or len(run) >= 2):
                start_block = top
                reason = "contact lines at the end"
    if start_block is not None:
        for i in rest:
            if i >= start_block:
                label[i] = ("signature", reason)
    else:
        # a name (or initials) fused with a phone number as the last line, on its own paragraph or right
        # after a closing: "Barry Tycholiz - 713-853-1587." — a one-line contact signature
        last = nb[-1]
        prev = [x for x in rest if x < last]
        if len(nb) > 1 and rules.is_name_phone_line(lines[last]) and (not lines[prev[-1]].strip() or rules.is_closing(lines[prev[-1]])):
            label[last] = ("signature", "name and phone number on the last line")
    rest = [i for i in rest if i not in label]
    full = _full_name_after_signoff(lines, rest)
    if full is not None:
        label[full] = ("signature", "full name under the sign-off (the signature's name line)")
    # separator residue at the end
    rest = [i for i in rest if i not in label]
    for i in reversed(rest):
        if not lines[i].strip():
            continue
        if rules.SEPARATOR.match(lines[i]):
            label[i] = ("signature", "trailing separator line")
            continue
        break


# ---------------------------------------------------------------- assembly


def _label_scissors(lines: list[str], label: dict[int, tuple[str, str]]) -> None:
    """'----8<' / '---->8' marks next to quoted lines belong to the quote."""
    for i, ln in enumerate(lines):
        if i in label or not rules.is_scissors(ln):
            continue
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(lines) and not lines[j].strip():
                j += step
            if 0 <= j < len(lines) and label.get(j, ("",))[0] == "quote":
                label[i] = ("quote", "scissors mark around a quoted excerpt")
                break


def _extract_plain(text: str, signatures: Sequence[str], depth: int = 0) -> Extraction:
    text = strip_controls(text)  # escapes and control characters (also from HTML entities) are never voice
    lines = rules.normalise(text).split("\n")
    armour = rules.pgp_armour(lines)
    if armour and any(rules.is_pgp_signed_start(x) for x in lines):
        lines = [rules.pgp_unescape(x) for x in lines]
    zones, is_forward = _scan_quotes(lines)
    label: dict[int, tuple[str, str]] = {i: ("signature", "OpenPGP armour") for i in armour}
    for kind, s, e, reason in zones:
        for i in range(s, e):
            label.setdefault(i, (kind, reason))
    _label_scissors(lines, label)
    author = [i for i in range(len(lines)) if i not in label]
    _apply_learned(lines, author, label, signatures)
    _signature_stage(lines, author, label)

    removed: list[Zone] = []
    cur: tuple[str, str] | None = None
    buf: list[str] = []
    for i, ln in enumerate(lines):
        lab = label.get(i)
        if lab is None:
            if not ln.strip() and cur is not None:
                buf.append(ln)
                continue
            if cur is not None:
                removed.append(Zone(cur[0], rules.tidy(buf), cur[1]))
            cur, buf = None, []
            continue
        if lab != cur:
            if cur is not None:
                removed.append(Zone(cur[0], rules.tidy(buf), cur[1]))
            cur, buf = lab, []
        buf.append(ln)
    if cur is not None:
        removed.append(Zone(cur[0], rules.tidy(buf), cur[1]))
    removed = [z for z in removed if z.text]

    quoted = None
    if depth == 0 and zones:
        kind, s, e, _r = zones[0]
        quoted = _quoted_context(lines, s, e)
    kept = rules.tidy([ln for i, ln in enumerate(lines) if i not in label])
    return Extraction(text=kept, removed=tuple(removed), quoted=quoted, is_forward=is_forward)


def extract_author_text(text: str | None, html: str | None = None, *, signatures: Sequence[str] = ()) -> Extraction:
    """Extract the author's own words from one sent email.

    ``text`` is the text/plain body, ``html`` the text/html body (either may be None). When both
    exist the plain text is used, unless it carries no quote markers at all while the HTML has a
    quote container (Gmail/Outlook/Apple/Yahoo/Thunderbird), in which case the HTML structure wins.
    ``signatures`` are learned per-user blocks from :func:`learn_signatures`.
    """
    if text is None or not text.strip():
        if not html:
            return Extraction(text="", removed=(), quoted=None, is_forward=False)
        return _extract_plain(_html_to_text(html, mark_quotes=True), signatures)
    result = _extract_plain(text, signatures)
    if html and not any(z.kind in ("quote", "forward") for z in result.removed) and has_quote_container(html):
        from_html = _extract_plain(_html_to_text(html, mark_quotes=True), signatures)
        if any(z.kind in ("quote", "forward") for z in from_html.removed):
            return Extraction(
                text=from_html.text,
                removed=from_html.removed + (Zone("html", "", "quote found via the HTML part's quote container"),),
                quoted=from_html.quoted,
                is_forward=from_html.is_forward,
            )
    return result


# ---------------------------------------------------------------- per-user signature learning


def _tail_candidates(body: str) -> set[tuple[str, ...]]:
    lines = rules.normalise(body).split("\n")
    zones, _ = _scan_quotes(lines)
    cut = min((s for _k, s, _e, _r in zones), default=len(lines))
    quoted = {i for _k, s, e, _r in zones for i in range(s, e)}
    nb = [" ".join(lines[i].split()) for i in range(cut) if lines[i].strip() and i not in quoted]
    nb = [x for x in nb if not rules.SIG_DELIM.match(x)]
    out: set[tuple[str, ...]] = set()
    tail = nb[-12:]
    for s in range(len(tail)):
        block = tail[s:]
        # the sign-off itself is voice: never part of a learned signature
        while block and rules.is_closing(block[0]):
            block = block[1:]
        if len(block) > 1 and rules.is_name_line(block[0]):
            block = block[1:]
        if block and (rules.is_sig_like(block[0]) or rules.is_disclaimer_start(block[0])) and any(
            rules.contact_score(x) >= 1 or rules.is_disclaimer_start(x) for x in block
        ):
            out.add(tuple(block))
    return out


def learn_signatures(bodies: Iterable[str], *, min_count: int = 3, min_share: float = 0.2) -> list[str]:
    """Learn a user's signature blocks: trailing blocks (after the sign-off) that repeat across many
    of the user's messages. Returns blocks (lines joined by '\\n') to pass as ``signatures=``."""
    counts: Counter[tuple[str, ...]] = Counter()
    total = 0
    for body in bodies:
        if not body or not body.strip():
            continue
        total += 1
        counts.update(_tail_candidates(body))
    if not total:
        return []
    need = max(min_count, min_share * total)
    good = [b for b, c in counts.items() if c >= need]
    # a block made only of a name / closing is a sign-off, not a signature
    good = [b for b in good if not (len(b) == 1 and (rules.is_name_line(b[0]) or rules.is_closing(b[0])))]
    # keep maximal blocks: drop those that are a suffix of a longer qualifying block
    good.sort(key=len, reverse=True)
    chosen: list[tuple[str, ...]] = []
    for b in good:
        if any(len(c) > len(b) and c[-len(b) :] == b for c in chosen):
            continue
        chosen.append(b)
    return ["\n".join(b) for b in chosen]
