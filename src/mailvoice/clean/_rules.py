"""Line rules for quotes, forwards, signatures, device footers and disclaimers.

Why own rules instead of wrapping mail-parser-reply / email-reply-parser: both libraries treat the
sign-off ("Thanks,\\nDana", "-Abhishek") as signature and drop it, which is exactly the voice we want to
keep, they do not detect forwards, Lotus Notes / Enron blocks or contact blocks without a ``--``
delimiter, and they return no zones. bench/cleaning_score.py measures both as baselines.
All patterns are compiled once at import; every function here is pure.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------- normalisation

_ZW = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


def normalise(text: str) -> str:
    """CRLF/CR -> LF, nbsp -> space, zero-width chars dropped, trailing spaces stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\u202f", " ")
    text = text.translate(_ZW)
    return "\n".join(ln.rstrip() for ln in text.split("\n"))


def tidy(lines: list[str]) -> str:
    """Join lines, collapse blank-line runs, strip the ends."""
    out: list[str] = []
    blank = True
    for ln in lines:
        ln = ln.rstrip()
        if not ln.strip():
            if not blank:
                out.append("")
            blank = True
            continue
        out.append(ln)
        blank = False
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


# ---------------------------------------------------------------- quote markers

QUOTE_LINE = re.compile(r"^\s*>")
_QUOTE_PREFIX = re.compile(r"^\s*(?:>[ \t]?)+")


def strip_quote_level(line: str) -> str:
    """Remove one level of '>' quoting."""
    m = re.match(r"^\s*>[ \t]?", line)
    return line[m.end():] if m else line


def unquote(line: str) -> str:
    return _QUOTE_PREFIX.sub("", line)


# ---------------------------------------------------------------- "On … wrote:" headers

_VERBS = (
    r"wrote|writes|has written|schrieb|schreef|a\s+écrit|a\s+ecrit|escribió|escribio|escreveu|skrev(?:\s+følgende)?"
    r"|kirjoitti|ha\s+scritto|napisał\(a\)|napisała?|napsal\(a\)|írta|написал\(а\)|написала?|yazdı|έγραψε|写道|wrote\s+on"
)
_WROTE = re.compile(rf"(?:^|[\s,\"')>])(?:{_VERBS})(?:\b|(?=[\s:]))(?P<post>.{{0,140}}?)\s*:?\s*$", re.I | re.S)
_INTRO = re.compile(
    r"^\s*(?:on|am|le|el|op|em|den|d\.|il|in\s+data|w\s+dniu|dnia|dne|på|der|the|ke|pe|ma|ti|ke|to|la|su|"
    r"mon|tue|wed|thu|fri|sat|sun|man|tir|ons|tor|fre|lør|søn|mån|tis|lör|sön)\b",
    re.I,
)
_EMAILISH = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\[mailto:|<mailto:")
_DATEISH = re.compile(r"\d{1,2}:\d{2}|\b(?:19|20)\d{2}\b|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_ENDS_COLON = re.compile(r"[:：]\s*$")
_DASHES = re.compile(r"^-{2,}\s*|\s*-{2,}$")


def wrote_header_at(lines: list[str], i: int, *, quoted: bool = False) -> int:
    """If lines[i:i+k] (k<=3) form an 'On … wrote:' style header, return k, else 0."""
    first = lines[i]
    if quoted:
        first = unquote(first)
    if not first.strip() or len(first) > 400:
        return 0
    joined = ""
    for k in range(1, 4):
        if i + k - 1 >= len(lines):
            break
        ln = lines[i + k - 1]
        if quoted:
            ln = unquote(ln)
        elif k > 1 and QUOTE_LINE.match(ln) and not re.match(r"^\s*>\s*:\s*$", ln):
            break
        if not ln.strip():
            break
        if k == 1:
            joined = _DASHES.sub("", ln.strip())
            # a multi-line header must start like one ('On …', a date, an address), not 'Hi,'
            can_wrap = bool(_INTRO.match(joined) or re.search(r"\d", joined) or _EMAILISH.search(joined))
        else:
            if not can_wrap:
                break
            joined = _DASHES.sub("", joined + " " + ln.strip())
        if len(joined) > 400:
            break
        if _is_wrote_header(joined):
            return k
        if _is_generic_header(joined, k):
            return k
    return 0


def _is_wrote_header(s: str) -> bool:
    m = _WROTE.search(s)
    if not m:
        return False
    post = m.group("post")
    if post and not (_ENDS_COLON.search(s) or post.strip(" :") == ""):
        return False
    if len(post) > 120:
        return False
    pre = s[: m.start()]
    if not pre.strip() and not post.strip(" :"):
        return False
    return bool(_INTRO.match(s) or _DATEISH.search(s) or _EMAILISH.search(s)) and len(s) < 350


def _is_generic_header(s: str, k: int) -> bool:
    # '30.09.2017, 18.30, "John - Doe" <j@x.com>:'  /  'ср, 30 апр. 2025 г. в 15:19, John Doe <d@e.com>:'
    if not _ENDS_COLON.search(s) or len(s) > 250:
        return False
    return bool(_EMAILISH.search(s) and _DATEISH.search(s))


# ---------------------------------------------------------------- Outlook / Lotus header blocks

_FIELDS_FROM = r"from|von|de|van|da|fra|från|od|от|от кого|message du|expéditeur|remitente|lähettäjä|feladó"
_FIELDS_OTHER = (
    r"sent|to|cc|bcc|subject|date|reply-to|organization|importance|"
    r"gesendet|an|betreff|datum|kopie|"
    r"envoyé(?:\s+le|\s+par)?|à|a|objet|copie(?:\s+à)?|sujet|cc|"
    r"verzonden|aan|onderwerp|"
    r"inviato|oggetto|data|"
    r"sendt|til|emne|dato|kopi|"
    r"skickat|till|ämne|kopia|"
    r"wysłano|do|temat|dw|"
    r"enviado(?:\s+el)?|para|asunto|fecha|assunto|"
    r"kome|кому|дата|тема|отправлено|"
    r"lähetetty|vastaanottaja|aihe|"
    r"odesláno|komu|předmět"
)
_FIELD_LINE = re.compile(
    rf"^\s*[*_]{{0,2}}\s*(?P<name>{_FIELDS_FROM}|{_FIELDS_OTHER})\s*[*_]{{0,2}}\s*[:：]\s*[*_]{{0,2}}(?P<value>.*)$", re.I
)
_FROM_NAME = re.compile(rf"^(?:{_FIELDS_FROM})$", re.I)
_SUBJECT_NAME = re.compile(r"^(?:subject|betreff|objet|sujet|onderwerp|oggetto|emne|ämne|temat|asunto|assunto|тема|aihe|předmět)$", re.I)
_FWD_SUBJECT = re.compile(r"^\s*\*?\s*(?:fw|fwd|wg|tr|rv|enc|vs|doorst|i)\s*:", re.I)
_LOTUS_DATE_LINE = re.compile(r"(?:\bon\b\s*)?\d{1,2}/\d{1,2}/\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AP]M)?)?\s*$", re.I)


def field_of(line: str) -> tuple[str, str] | None:
    m = _FIELD_LINE.match(line)
    if not m:
        return None
    return m.group("name").lower(), m.group("value")


def header_block_at(lines: list[str], i: int) -> tuple[int, int, bool] | None:
    """An Outlook-style From:/Sent:/To:/Subject: block (or Lotus To:/cc:/Subject:) starting at i.

    Returns (start, end_exclusive, subject_is_forward) or None. ``start`` can be before i when a Lotus
    "Name <addr> on 01/02/2001 10:00 AM" line precedes the To: line.
    """
    f = field_of(lines[i])
    if f is None:
        return None
    names: list[str] = []
    j = i
    fwd = False
    misses = 0
    while j < len(lines) and j < i + 14:
        ln = lines[j]
        fld = field_of(ln)
        if fld is not None:
            names.append(fld[0])
            if _SUBJECT_NAME.match(fld[0]) and _FWD_SUBJECT.match(fld[1] or ""):
                fwd = True
            misses = 0
        elif not ln.strip():
            if len(names) >= 2:
                break
            misses += 1
            if misses > 1:
                break
        else:
            # a wrapped value (long From: address on the next line); only a couple allowed
            misses += 1
            if misses > 2:
                break
        j += 1
    distinct = set(names)
    if len(distinct) < 2:
        return None
    has_from = any(_FROM_NAME.match(n) for n in names)
    has_subject = any(_SUBJECT_NAME.match(n) for n in names)
    if not (has_from or has_subject):
        return None
    if not has_from:
        # Lotus Notes: 'To: … / cc: / Subject: …' needs three fields, maybe a 'Name on date' line above
        if len(distinct) < 3 and not (i > 0 and _LOTUS_DATE_LINE.search(lines[i - 1])):
            return None
    # trim trailing non-field lines
    end = j
    while end > i and field_of(lines[end - 1]) is None:
        end -= 1
    start = i
    k = i - 1
    if not has_from:
        # Lotus Notes may leave blank lines between the 'name / date' lines and To:
        up = k
        while up >= 0 and i - up <= 4 and not lines[up].strip():
            up -= 1
        if up >= 0 and up < k and _LOTUS_DATE_LINE.search(lines[up]):
            k = up
    back = 0
    while k >= 0 and back < 3 and lines[k].strip() and not has_from:
        if _LOTUS_DATE_LINE.search(lines[k]) or _EMAILISH.search(lines[k]) or "@" in lines[k]:
            start = k
        elif k + 1 == start and _LOTUS_DATE_LINE.search(lines[start]) and is_lotus_name(lines[k]):
            # Lotus Notes puts the sender's name alone (often indented) above the date line
            start = k
            break
        k -= 1
        back += 1
    return start, end, fwd


_LOTUS_NAME = re.compile(r"^\s*[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'’.-]*){0,3}(?:/[\w-]+)*\s*$")


def is_lotus_name(line: str) -> bool:
    """A Lotus Notes sender line: a name alone, maybe with its Notes hierarchy ('Jane Doe/HOU/ECT')."""
    s = line.strip()
    return bool(s) and len(s) <= 60 and (is_name_line(s) or bool(_LOTUS_NAME.match(s) and "/" in s))


# ---------------------------------------------------------------- separators / original / forward

SEPARATOR = re.compile(r"^\s*(?:[-_=*~]\s?){3,}\s*$")
_ORIGINAL = re.compile(
    r"^\s*[-=_*]{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|originalnachricht|message\s+d['’]origine|"
    r"message\s+original|oprindelig\s+(?:meddelelse|besked)|mensaje\s+original|mensagem\s+original|"
    r"oorspronkelijk\s+bericht|origineel\s+bericht|messaggio\s+originale|ursprungligt\s+meddelande|"
    r"opprinnelig\s+melding|alkuperäinen\s+viesti|wiadomość\s+oryginalna|oryginalna\s+wiadomość|"
    r"původní\s+zpráva|исходное\s+сообщение|reply\s+message)\s*[-=_*]{0,}\s*$",
    re.I,
)
_FORWARD = re.compile(
    r"^\s*(?:[-=_*]{2,}\s*(?:forwarded\s+message|weitergeleitete\s+nachricht|message\s+transféré|"
    r"mensaje\s+reenviado|mensagem\s+encaminhada|doorgestuurd\s+bericht|messaggio\s+inoltrato|"
    r"videresendt\s+(?:meddelelse|besked|melding)|vidarebefordrat\s+meddelande|wiadomość\s+przekazana(?:\s+dalej)?|"
    r"přeposlaná\s+zpráva|пересылаемое\s+сообщение|välitetty\s+viesti|original\s+forwarded\s+message)|"
    r"begin\s+forwarded\s+message\s*:|anfang\s+der\s+weitergeleiteten\s+nachricht\s*:|"
    r"début\s+du\s+message\s+réexpédié\s*:|inicio\s+del\s+mensaje\s+reenviado\s*:|"
    r"[-]{3,}\s*forwarded\s+by\b.*)",
    re.I,
)
_LOTUS_FROM = re.compile(r"^\s*-{3,}\s*(?:forwarded|original)\s+(?:by|message)\b", re.I)


_SCISSORS = re.compile(r"^\s*-*\s*(?:8<|>8|✂)\s*-*\s*$")
_PGP_SIGNED = re.compile(r"^-----BEGIN PGP SIGNED MESSAGE-----\s*$")
_PGP_HASH = re.compile(r"^Hash:\s*[\w, -]+$")
_PGP_SIG_BEGIN = re.compile(r"^-----BEGIN PGP SIGNATURE-----\s*$")
_PGP_SIG_END = re.compile(r"^-----END PGP SIGNATURE-----\s*$")


def is_scissors(line: str) -> bool:
    """'----8<' / '---->8': the marks around a quoted excerpt."""
    return bool(_SCISSORS.match(line))


def pgp_armour(lines: list[str]) -> list[int]:
    """Indexes of OpenPGP clear-sign armour lines: the BEGIN line and its Hash: headers, and the
    signature block from BEGIN PGP SIGNATURE to END PGP SIGNATURE (RFC 4880 §7)."""
    out: list[int] = []
    i, n = 0, len(lines)
    while i < n:
        if _PGP_SIGNED.match(lines[i]):
            out.append(i)
            j = i + 1
            while j < n and _PGP_HASH.match(lines[j]):
                out.append(j)
                j += 1
            i = j
            continue
        if _PGP_SIG_BEGIN.match(lines[i]):
            j = i
            while j < n and not _PGP_SIG_END.match(lines[j]):
                j += 1
            if j < n:
                out.extend(range(i, j + 1))
                i = j + 1
                continue
        i += 1
    return out


def is_pgp_signed_start(line: str) -> bool:
    return bool(_PGP_SIGNED.match(line))


def pgp_unescape(line: str) -> str:
    """Undo OpenPGP dash-escaping ('- -- ' → '-- ') inside a clear-signed message."""
    return line[2:] if line.startswith("- -") else line


def is_original_marker(line: str) -> bool:
    return bool(_ORIGINAL.match(line))


def is_forward_marker(line: str) -> bool:
    return bool(_FORWARD.match(line))


# ---------------------------------------------------------------- device footers

_DEVICE = re.compile(
    r"^\s*(?:sent\s+from\s+(?:my\s+)?|sent\s+(?:via|with|using)\s+|sent\s+on\s+the\s+go\b|get\s+outlook\s+for\s+|"
    r"envoyé\s+(?:de|depuis|à\s+partir\s+de)\s+|gesendet\s+(?:von|mit|vom)\s+|von\s+meinem\s+\S+\s+gesendet|"
    r"enviado\s+(?:desde|de)\s+|verzonden\s+(?:vanaf|met|van)\s+|verstuurd\s+vanaf\s+|sendt\s+fra\s+|skickat\s+från\s+|"
    r"wysłano\s+z\s+|inviato\s+da\s+|odesláno\s+z\s+|lähetetty\s+|отправлено\s+с\s+|"
    r"scanned\s+by\s+|this\s+email\s+was\s+sent\s+from\s+my\s+|(?:sent\s+)?via\s+(?=(?:my\s+)?(?:mobile|phone|iphone|ipad|android|blackberry|cell)\b))"
    r"(?P<rest>.*)$",
    re.I,
)
_URL_ANGLE = re.compile(r"<(?:https?://|mailto:)[^>]*>|\((?:https?://)[^)]*\)")


def is_device_footer(line: str) -> bool:
    s = _URL_ANGLE.sub("", line).strip()
    m = _DEVICE.match(s)
    if not m or len(s) > 80:
        return False
    rest = m.group("rest").strip().rstrip(".!")
    # 'Sent from my desk, is much easier than my mobile phone.' is prose, not a footer
    if "," in rest or len(rest.split()) > 6:
        return False
    return True


# ---------------------------------------------------------------- signatures

SIG_DELIM = re.compile(r"^(?:--|-- |--\s*|—\s?—|__)\s*$")
_CLOSINGS = (
    r"thanks|thank\s+you|thx|tks|ty|many\s+thanks|thanks\s+(?:again|so\s+much|a\s+lot|in\s+advance)|cheers|best|"
    r"all\s+the\s+best|best\s+wishes|best\s+regards|kind\s+regards|warm\s+regards|warmest\s+regards|warmly|regards|"
    r"rgds|br|kr|sincerely|yours(?:\s+(?:sincerely|truly|faithfully))?|sincerely\s+yours|respectfully|take\s+care|"
    r"talk\s+soon|love|hugs|xoxo|later|peace|ciao|cordially|with\s+thanks|with\s+best\s+regards|"
    r"mit\s+freundlichen\s+grüßen|mit\s+freundlichen\s+grüssen|mfg|viele\s+grüße|viele\s+grüsse|beste\s+grüße|"
    r"liebe\s+grüße|lg|grüße|gruß|gruss|danke|vielen\s+dank|"
    r"cordialement|bien\s+à\s+vous|bien\s+cordialement|merci|salutations|amicalement|bises|"
    r"saludos|atentamente|un\s+saludo|gracias|muchas\s+gracias|cordialmente|abrazos|"
    r"met\s+vriendelijke\s+groet(?:en)?|groeten|groet|mvg|hartelijke\s+groeten|bedankt|"
    r"atenciosamente|abraços|obrigado|obrigada|cumprimentos|"
    r"cordiali\s+saluti|saluti|grazie|distinti\s+saluti|"
    r"med\s+venlig\s+hilsen|venlig\s+hilsen|hilsen|mvh|kh|vh|bedste\s+hilsner|"
    r"med\s+vänliga\s+hälsningar|vänliga\s+hälsningar|hälsningar|mvh|"
    r"pozdrawiam|z\s+poważaniem|z\s+powazaniem|pozdrowienia|dzięki|"
    r"s\s+pozdravem|с\s+уважением|спасибо"
)
CLOSING_LINE = re.compile(rf"^\s*(?:{_CLOSINGS})\b[\s!.,]*(?P<name>[^\s].{{0,40}})?$", re.I)
_CLOSING_ONLY = re.compile(rf"^\s*(?:{_CLOSINGS})\s*[!.,:;]*\s*$", re.I)
_PHONE = re.compile(
    r"(?:\+?\d[\d\s().-]{6,}\d)|\b(?:x|ext\.?)\s?-?\d{3,6}\b|\b\d{3}[-.]\d{4}\b|\bx\d[-.]?\d{4}\b|(?<![\w-])\d{1,2}-\d{4}\b|(?<!\w)\*\d{4}\b",
    re.I,
)
_TITLE = re.compile(
    r"\b(?:manager|director|president|vp|vice\s+president|ceo|cto|cfo|coo|founder|co-founder|engineer|developer|"
    r"analyst|consultant|specialist|coordinator|counsel|attorney|partner|officer|head\s+of|professor|"
    r"inc|llc|ltd|gmbh|corp|corporation|plc|s\.a\.|b\.v\.)\b\.?",
    re.I,
)
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|org|net|io|co|de|fr|uk|nl|ca|edu|gov)\b", re.I)
_CONTACT_WORD = re.compile(
    r"\b(?:phone|tel|telephone|mobile|mob|cell|fax|direct|office|email|e-mail|skype|linkedin|twitter|web|"
    r"manager|director|president|vp|vice\s+president|ceo|cto|cfo|coo|founder|co-founder|engineer|developer|"
    r"analyst|consultant|specialist|coordinator|associate|assistant|counsel|attorney|partner|officer|head\s+of|"
    r"lead|senior|principal|inc|llc|ltd|gmbh|corp|corporation|company|group|department|dept|university|"
    r"street|st\.|suite|floor|avenue|ave|road|rd\.|blvd|houston|london|texas|tx|ny|ca|"
    r"laboratory|lab|institute|centre|center|division|school|college|faculty|"
    r"voice|internet|icq|pager|telex)\b",
    re.I,
)
# the last lines of a postal address: a country, an Irish/UK county, a US 'City, ST 12345', a postcode
_ADDRESS_LINE = re.compile(
    r"^\s*(?:(?:the\s+)?(?:ireland|northern\s+ireland|uk|u\.k\.|united\s+kingdom|england|scotland|wales|usa|u\.s\.a\.|"
    r"united\s+states(?:\s+of\s+america)?|canada|australia|new\s+zealand|germany|deutschland|france|netherlands|"
    r"belgium|sweden|norway|denmark|finland|spain|italy|switzerland|austria|japan|india|israel)|"
    r"co\.?\s+[A-Z][a-z]+|county\s+[A-Z][a-z]+|"
    r"[A-Z][\w .'-]*,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?(?:\s+\w+)*|"
    r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\s*[.,]?\s*$",
    re.I,
)
# a name may carry post-nominal letters after a comma ("John E. Doe, Ph.D.", "Ann Lee, MBA, CPA"):
# they are part of how people sign, not prose
_POSTNOMINAL = r"(?:,\s*(?:Ph\.?\s?D\.?|M\.?D\.?|MBA|M\.?Sc\.?|B\.?Sc\.?|Jr\.?|Sr\.?|Esq\.?|CPA|CFA|PMP|P\.?E\.?|II|III|IV))*"
_NAME_LINE = re.compile(
    rf"^\s*[-–—~/]?\s*[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'’.-]*){{0,3}}{_POSTNOMINAL}\s*[.,]?\s*$"
)
_INITIALS = re.compile(r"^\s*[-–—~/]?\s*[A-Z]{1,3}\.?\s*$")
_SENTENCE_END = re.compile(r"[.?!]\s*$")


def is_closing(line: str) -> bool:
    s = line.strip()
    if len(s) > 50:
        return False
    m = CLOSING_LINE.match(s)
    if not m:
        return False
    name = m.group("name")
    if name is None:
        return True
    # 'Thanks, Kim' / 'Cheers, Dana' / 'Your pal, Craig.' — but not 'Thanks for the update.'
    return bool(re.match(r"^[,\s]*[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'’.-]*){0,2}\s*[.!]?$", name)) and "," in s


def is_name_line(line: str) -> bool:
    s = line.strip()
    if not s or len(s) > 40 or any(c.isdigit() for c in s) or "@" in s:
        return False
    # a job title / company line ("President", "Acme Corp") is contact information, not a sign-off name
    if _TITLE.search(s):
        return False
    return bool(_NAME_LINE.match(s) or _INITIALS.match(s))


# a name (or initials) and a phone number on one line, nothing else: "Barry Tycholiz - 713-853-1587.",
# "BT   3-1587". That is a one-line contact signature, not prose.
_NAME_PHONE_LINE = re.compile(
    r"^\s*(?:[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'’.-]*){0,3}|[A-Z]{1,3})\s*[-–—,:|/]?\s*"
    r"(?i:(?:tel|phone|ph|cell|mobile|x|ext)\.?:?\s*)?"
    r"(?P<phone>\+?\(?\d[\d\s().-]{2,}\d)\s*\.?\s*$"
)


def is_name_phone_line(line: str) -> bool:
    s = line.strip()
    m = _NAME_PHONE_LINE.match(s)
    if not m or len(s) > 60 or not s[0].isupper():
        return False
    return bool(_PHONE.search(m.group("phone")))


_FIELD_SPLIT = re.compile(r"\s*(?:\||\t|\s{2,}|\s[-–—]\s)\s*")


def is_name_then_contact(line: str) -> bool:
    """A one-line contact card: a name, then fields with an address, URL or phone
    ('Jo Bloggs | Acme | www.acme.ie | Tel : 086-…', 'James H. McCullars     I Phone: (256) 824-2610')."""
    parts = [x for x in _FIELD_SPLIT.split(line.strip()) if x]
    if len(parts) < 2 or not is_name_line(parts[0]) or _URL.search(parts[0]) or is_prose_like(line):
        return False
    return any(_EMAILISH.search(x) or _URL.search(x) or _PHONE.search(x) for x in parts[1:])


def contact_score(line: str) -> int:
    """How strongly a line looks like part of a contact block (0 = not at all)."""
    s = line.strip()
    if not s:
        return 0
    score = 0
    if _EMAILISH.search(s):
        score += 2
    if _URL.search(s):
        score += 2
    if _PHONE.search(s):
        score += 2
    if _TITLE.search(s) and len(s.split()) <= 8 and not _SENTENCE_END.search(s.rstrip(".")) :
        score += 2
    elif _CONTACT_WORD.search(s):
        score += 1
    if SEPARATOR.match(s):
        score += 1
    if not score and _ADDRESS_LINE.match(s):
        score = 1
    return score


def is_sig_like(line: str) -> bool:
    """Short, non-prose line that could belong to a signature block."""
    s = line.strip()
    if not s:
        return True
    if contact_score(s) >= 2:
        return len(s) <= 120
    if len(s) > 70:
        return False
    words = s.split()
    limit = 9 if contact_score(s) else 7
    if len(words) > limit and not (len(words) <= 10 and _is_title_case(words)):
        return False
    # a final '.' after an abbreviation ("Ph.D.", "Jr.", "Inc.") does not end a sentence
    if _SENTENCE_END.search(s) and not _ABBREV_END.search(s) and len(words) > 3 and not _CONTACT_WORD.search(s):
        return False
    return True


def _is_title_case(words: list[str]) -> bool:
    """An organisation / address line: every word capitalised, bracketed or a linking word
    ('Ernest O. Lawrence Berkeley National Laboratory (Berkeley Lab)'), no sentence end."""
    if _SENTENCE_END.search(words[-1]):
        return False
    return all(w[:1].isupper() or w[:1] in "(&-" or w[:1].isdigit() or w.strip(",.()") in _LINKERS for w in words)


_LOWER_WORD = re.compile(r"^[a-zà-öø-ÿ][a-zà-öø-ÿ'’]*[,.;!?]?$")


def is_prose_like(line: str) -> bool:
    """Two or more plain lowercase words that are not contact vocabulary ('Call me at 713-…', 'and the
    notes at …'): a sentence fragment. Contact lines are names, titles, addresses, numbers and links
    ('Vice President of Sales', 'phone: 713-…', '1400 Smith St.')."""
    n = 0.0
    for tok in line.split():
        if tok.strip(",.;!?") in _PROSE_WORDS:
            return True  # lowercase pronouns / auxiliaries never occur in a contact line ('IT', 'US' do)
        if _LOWER_WORD.match(tok) and not _CONTACT_WORD.fullmatch(tok.strip(",.;!?")):
            # linking words ('of', 'and', 'at') also occur in titles: they count half
            n += 0.5 if tok.strip(",.;!?") in _LINKERS else 1
    return n >= 2


_PROSE_WORDS = frozenset({"me", "you", "we", "us", "it", "is", "are", "was", "will", "can", "please", "Please", "I'm", "I'll"})
_LINKERS = frozenset({"of", "and", "for", "the", "de", "du", "la", "le", "und", "für", "van", "der", "at", "&"})

_ABBREV_END = re.compile(r"(?:\b(?:Ph\.?\s?D|M\.?D|Jr|Sr|Esq|Inc|Ltd|Co|Corp|Bros|P\.E|M\.Sc|B\.Sc)\.)\s*$", re.I)


# ---------------------------------------------------------------- disclaimers / list footers

_DISCLAIMER_STRONG = re.compile(
    r"^\s*[*_\[]*\s*(?:confidentiality\s+(?:notice|note|statement|warning)|disclaimer\s*[:*\]]|legal\s+disclaimer|"
    r"privileged\s*(?:and|&)\s*confidential|caution\s*:\s*(?:this|external)|\[?external\]?\s*(?:email|sender)\s*:|"
    r"please\s+consider\s+the\s+environment\s+before\s+printing|"
    r"le\s+informazioni\s+contenute\s+in\s+questo|ce\s+message\s+(?:et\s+(?:toutes\s+)?les\s+pièces|est\s+confidentiel))",
    re.I,
)
_DISCLAIMER_WEAK = re.compile(
    r"^\s*[*_]*\s*(?:important\s*(?:notice)?\s*:|notice\s*:|warning\s*:|caution\s*:|"
    r"(?:this|the)\s+(?:e-?mail|message|communication|transmission|information)\b|"
    r"the\s+information\s+(?:contained\s+)?in\s+this|the\s+contents?\s+of\s+this|"
    r"if\s+you\s+(?:are\s+not|have\s+received\s+this)|any\s+(?:views|opinions)\s+expressed|"
    r"diese\s+(?:e-?mail|nachricht)|dieses?\s+e-?mail|este\s+(?:mensaje|correo)|dit\s+(?:e-?mail)?bericht|"
    r"denne\s+e-?mail|detta\s+e-?postmeddelande|ce\s+(?:message|courriel))",
    re.I,
)
_DISCLAIMER_KEYWORDS = re.compile(
    r"confidential|privileged|intended\s+(?:solely\s+|only\s+)?for\s+the|intended\s+recipient|addressee|"
    r"unauthori[sz]ed|prohibited|strictly|disclos|dissemina|originated\s+from\s+outside|do\s+not\s+click|"
    r"received\s+this\s+(?:e-?mail|message|communication)\s+in\s+error|virus|legally\s+binding|"
    r"vertraulich|empfänger|destinatario|destinataire|riservat|vertrouwelijk|fortrolig|konfidentiell",
    re.I,
)
_LIST_FOOTER = re.compile(
    r"(?:mailing\s+list|listinfo|unsubscribe|you\s+received\s+this\s+message\s+because\s+you\s+are\s+subscribed|"
    r"to\s+post\s+to\s+this\s+group|reply\s+to\s+this\s+email\s+directly|view\s+it\s+on\s+github|"
    r"manage\s+your\s+subscription|list-unsubscribe)",
    re.I,
)
_LIST_FOOTER_START = re.compile(
    r"^\s*(?:you\s+received\s+this\s+(?:message|email)\s+because|to\s+unsubscribe\s+from\s+this\s+group|"
    r"reply\s+to\s+this\s+email\s+directly|—\s*reply\s+to\s+this\s+email)",
    re.I,
)


def is_disclaimer_start(line: str, context: str = "") -> bool:
    """A legal disclaimer / caution banner starts at ``line`` (``context``: the lines after it)."""
    if _DISCLAIMER_STRONG.match(line):
        return True
    return bool(_DISCLAIMER_WEAK.match(line) and _DISCLAIMER_KEYWORDS.search(line + " " + context[:300]))


def looks_like_disclaimer(text: str) -> bool:
    """Two different legal keywords in a few lines ('Privileged/Confidential Information may be
    contained in this message. If you are not the addressee …'): the body of a disclaimer."""
    return len({m.group(0).lower()[:8] for m in _DISCLAIMER_KEYWORDS.finditer(text)}) >= 2


def is_list_footer(line: str) -> bool:
    return bool(_LIST_FOOTER.search(line))


def is_list_footer_start(line: str) -> bool:
    return bool(_LIST_FOOTER_START.match(line))
