"""Unit tests for the scrubber: API, placeholders, protect, URLs, HTML, wrapped values, prose passwords."""

from __future__ import annotations

from collections import Counter

from mailvoice.dataset.pii import Scrubbed, iban_ok, luhn_ok, scrub


def test_api_and_counts():
    out = scrub("Mail me at jo.novak@example.com or call (212) 736-5000.")
    assert isinstance(out, Scrubbed) and isinstance(out.counts, Counter)
    assert out.text == "Mail me at <EMAIL> or call <PHONE>."
    assert out.counts == Counter({"EMAIL": 1, "PHONE": 1})
    assert scrub("").text == ""


def test_every_type():
    text = (
        "card 4111 1111 1111 1111, ssn 536-22-8741, iban GB29 NWBK 6016 1331 9268 19, "
        "ip 203.0.113.7, key AKIAIOSFODNN7EXAMPLE, phone +44 20 7946 0321"
    )
    out = scrub(text)
    for label in ("CARD", "SSN", "IBAN", "IP", "SECRET", "PHONE"):
        assert f"<{label}>" in out.text, (label, out.text)
    assert not any(ch.isdigit() for ch in out.text)


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB29 NWBK 6016 1331 9268 19") and not iban_ok("GB28 NWBK 6016 1331 9268 19")
    # a Luhn-failing 16-digit number is not a card
    assert "<CARD>" not in scrub("ref 4111 1111 1111 1112").text


def test_urls_configurable():
    text = "See https://intranet.example.com/reset?token=abc for details."
    assert scrub(text).text == "See <URL> for details."
    kept = scrub(text, keep_urls=True)
    assert "https://intranet.example.com/reset" in kept.text and "URL" not in kept.counts


def test_protect_keeps_name_and_signoff_but_not_own_address():
    text = "Thanks!\n\nCheers,\nDana Whitfield\ndana.whitfield@example.com\nQ7kLm2Np8Rt5Vw3Xy6Za9Bc"
    out = scrub(text, protect=["Dana Whitfield", "Dana"])
    assert "Cheers,\nDana Whitfield\n" in out.text
    assert "<EMAIL>" in out.text and "dana.whitfield@" not in out.text
    assert "<SECRET>" in out.text
    # a protected string is never replaced, even when a detector would take it
    assert scrub("pw: Zebra42x", protect=["Zebra42x"]).text == "pw: Zebra42x"


def test_html_entities_and_markup():
    out = scrub('<p>Write to <a href="mailto:li.tanaka@acme.io">li.tanaka&#64;acme.io</a>, '
                "tel&nbsp;+1&nbsp;415&nbsp;823&nbsp;4567</p>")
    assert out.counts["EMAIL"] == 2 and out.counts["PHONE"] == 1
    assert "acme" not in out.text and "4567" not in out.text
    assert out.text.startswith("<p>") and out.text.endswith("</p>")


def test_value_wrapped_across_line_break_keeps_lines():
    out = scrub("Card is 4111 1111\n1111 1111 thanks")
    assert out.text == "Card is <CARD>\n thanks"
    quoted = scrub("> IBAN GB29 NWBK 6016\n> 1331 9268 19\n> Bob")
    assert quoted.text == "> IBAN <IBAN>\n> \n> Bob"
    token = scrub("token ghp_abcdefghijklmnopqrst\nuvwxyz0123456789ABCD ok")
    assert "<SECRET>" in token.text and "uvwxyz" not in token.text


def test_neighbouring_lines_are_not_glued_into_values():
    text = "Contact: 4111111111111111\nLondon\nOrder 1234\n5678 shipped"
    out = scrub(text)
    assert out.text == "Contact: <CARD>\nLondon\nOrder 1234\n5678 shipped"


def test_prose_passwords():
    for s in ("my password is Tr0ub4dor&3.", "pw: hunter2", "the wifi password is sunshine",
              "Password: x9!kQ", "pwd=abc123", "PIN is 4821"):
        out = scrub(s)
        assert out.counts["SECRET"] == 1, (s, out.text)
    for s in ("I forgot my password again.", "The password is on the sticky note.",
              "Your password is reset now.", "password is required"):
        assert not scrub(s).counts, s


def test_private_key_block():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n" * 3
    key += "-----END OPENSSH PRIVATE KEY-----"
    out = scrub(f"here:\n{key}\nbye")
    assert out.text == "here:\n<SECRET>\nbye"


def test_region_for_national_numbers():
    assert "<PHONE>" in scrub("ring me on 020 7946 0321", region="GB").text


def test_subjects_are_scrubbed_and_plain_ones_skip_the_detectors():
    from mailvoice.dataset.pii import scrub_subject

    assert scrub_subject("Call me on 415-555-0134 re: lease").text == "Call me on <PHONE> re: lease"
    assert scrub_subject("Fwd: from jo@example.org").text == "Fwd: from <EMAIL>"
    assert scrub_subject("new password: Zq8#kL2!vP9x").text == "new password: <SECRET>"
    assert scrub_subject("key AKIAABCDEFGHIJKLMNOP for S3").text == "key <SECRET> for S3"
    for plain in ("Re: Lunch on Friday?", "Quarterly numbers", "Dinner.", ""):
        out = scrub_subject(plain)
        assert out.text == plain and not out.counts


def test_sign_offs_after_a_url_or_address_survive():
    # issue 18: the joined views glued a value to the next paragraph's first word
    cases = {
        "Slides: https://example.com/deck\n\nThanks,\nPat": "Slides: <URL>\n\nThanks,\nPat",
        "(see https://example.com/a)\n\nCheers\nPat": "(see <URL>)\n\nCheers\nPat",
        "write to riley@example.com.\n\nBest regards,\nDavid": "write to <EMAIL>.\n\nBest regards,\nDavid",
        "Slides: https://example.com/deck\nThanks,\nPat": "Slides: <URL>\nThanks,\nPat",
        "URL: http://www.newsisfree.com/click/-1,8381645,1440/\nDate: Not supplied":
            "URL: <URL>\nDate: Not supplied",
        "Doctor of Folklore\nlejones@ucla.edu": "Doctor of Folklore\n<EMAIL>",
        "Kieran Taylor\n617-864-0455\nkieran@datapower.com": "Kieran Taylor\n<PHONE>\n<EMAIL>",
        "a nVidia\nGeForce4\nTi4200 card": "a nVidia\nGeForce4\nTi4200 card",
        "see http://www.example.com/list\n------------------\nunsubscribe": "see <URL>\n------------------\nunsubscribe",
    }
    for text, expected in cases.items():
        assert scrub(text).text == expected, text


def test_a_url_wrapped_mid_path_is_still_one_value():
    out = scrub("see http://story.news.yahoo.com/news?tmpl=story2&u=/ap/200\n20903/ap_on_re_eu/ukraine_iraq_3\n"
                "Ukraine-Iraq Arms Deals")
    assert out.text == "see <URL>\n\nUkraine-Iraq Arms Deals"
