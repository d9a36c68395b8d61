"""mailvoice.clean: strings in, strings out."""

from __future__ import annotations

import pytest

from mailvoice.clean import Extraction, Zone, extract_author_text, html_to_text, learn_signatures


def clean(text: str, **kw) -> str:
    return extract_author_text(text, **kw).text


def kinds(res: Extraction) -> list[str]:
    return [z.kind for z in res.removed]


def test_gt_quoted_lines_removed_and_quoted_context():
    res = extract_author_text("Sounds good.\n\nOn Mon, Jan 6, 2025 at 9:00 AM Bob <bob@x.com> wrote:\n> Lunch?\n> -Bob\n")
    assert res.text == "Sounds good."
    assert "quote" in kinds(res)
    assert res.quoted == "Lunch?\n-Bob"
    assert not res.is_forward


def test_bottom_posted_reply_keeps_text_after_quote():
    assert clean("On 26.06.2014 14:41, Alex wrote:\n> Hi\n> there\n\nHello back") == "Hello back"


@pytest.mark.parametrize(
    "header",
    [
        "On Tue, 16 Nov 2021, 12:34 pm John - Acme <john@acme.com>\nwrote:",
        "On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@reply.github.com>\nwrote:",
        "Am 13.12.2017 21:11 schrieb John Doe <j@d.de>:",
        "Le lun. 15 nov. 2021 à 19:42, John - Acme <john@acme.com>\na écrit :",
        "El 3 de marzo de 2020, a las 10:00, Ana <ana@x.es> escribió:",
        "Op 12 december 2016 19:05 schreef Company Questions <\nquestions@company.com>:",
        "Em 10 de julho de 2017 às 16:32:35, John Doe (\ncontact@stripe.com) escreveu:",
        "Den 5. jan. 2024 kl. 10.00 skrev Anders <a@b.dk>:",
        "Den 5 jan. 2024 kl. 10:00 skrev Anna <a@b.se>:",
        "W dniu 2017-01-09 11:59:39 użytkownik Jan <jan@x.pl> napisał:",
        "Il giorno 8 dic 2016, alle ore 10:00, Dino <d@x.it> ha scritto:",
        "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----",
    ],
)
def test_wrote_headers_all_languages(header):
    text = f"My answer is yes.\n\n{header}\n\nthe original question, unquoted\nsecond line\n"
    res = extract_author_text(text)
    assert res.text == "My answer is yes."
    assert res.quoted and "original question" in res.quoted


def test_on_at_line_start_is_not_a_header():
    text = "On Thursday, I get proper rendering.\n\nOn the other hand, it could happen twice!"
    assert clean(text) == text


@pytest.mark.parametrize(
    "block",
    [
        "From: Bob <bob@x.com>\nSent: Monday, May 5, 2025 10:00 AM\nTo: Dana <d@x.com>\nSubject: RE: plan",
        "*From:* Bob [mailto:bob@x.com]\n*Sent:* Thursday, February 09, 2012 1:36 PM\n*To:* d@x.com\n*Subject:* plan",
        "Von: Bob <bob@x.de>\nGesendet: Donnerstag, 23. März 2023 17:11\nAn: Dana <d@x.de>\nBetreff: AW: Plan",
        "De : Bob<mailto:bob@x.fr>\nEnvoyé : jeudi 15 décembre 2016 09:35\nÀ : d@x.fr\nObjet : Plan",
        "________________________________\nFrom: Bob <bob@x.com>\nSent: Thursday, September 26, 2019 11:35:12 AM\nTo: Dana\nSubject: plan",
        "-----Original Message-----\nFrom: bob@example.com\nSent: Monday, December 15, 2024 3:00 PM\nTo: d@example.com\nSubject: RE: Test",
        "-----Ursprüngliche Nachricht-----\nVon: Max <max@x.de>\nAn: Erika <e@x.de>\nBetreff: Ihre Anfrage",
    ],
)
def test_outlook_blocks(block):
    res = extract_author_text(f"Works for me.\n\nThanks,\nDana\n\n{block}\n\nOriginal text here.\n")
    assert res.text == "Works for me.\n\nThanks,\nDana"
    assert res.quoted == "Original text here."


def test_original_message_separator_alone():
    assert clean("Ok.\n\n-----Original Message-----\n\nHi John,\nold text") == "Ok."


def test_lotus_notes_enron_blocks():
    fwd = "FYI, see below.\n\n---------------------- Forwarded by Kay Mann/Corp/Enron on 01/02/2001 10:10 AM ---------------------------\n\nold text"
    res = extract_author_text(fwd)
    assert res.text == "FYI, see below." and res.is_forward
    reply = 'Fine by me.\n\n"John Doe" <jd@enron.com> on 01/02/2001 10:00:00 AM\nTo: Kay Mann/Corp/Enron@Enron\ncc:\nSubject: Re: deal\n\nold text'
    assert clean(reply) == "Fine by me."


@pytest.mark.parametrize(
    "marker",
    ["---------- Forwarded message ---------", "Begin forwarded message:", "-------- Weitergeleitete Nachricht --------"],
)
def test_forward_keeps_note(marker):
    res = extract_author_text(f"See the note below, Kim.\n\n{marker}\nFrom: A <a@x.com>\nDate: Mon, 1 Jan 2024\nSubject: X\nTo: B <b@x.com>\n\nforwarded body\n")
    assert res.text == "See the note below, Kim."
    assert res.is_forward
    assert "forward" in kinds(res)


def test_fw_subject_marks_forward():
    res = extract_author_text("fyi\n\nFrom: A <a@x.com>\nSent: Monday\nTo: B\nSubject: FW: numbers\n\nbody")
    assert res.is_forward and res.text == "fyi"


def test_signature_delimiter_removed_signoff_kept():
    res = extract_author_text("See you at 5.\n\nCheers,\nDana\n\n-- \nDana Smith\nAcme Corp | +1 555 123 4567\n")
    assert res.text == "See you at 5.\n\nCheers,\nDana"
    assert "signature" in kinds(res)
    assert clean("this is an email with a correct -- signature.\n\n--\nrick") == "this is an email with a correct -- signature."


@pytest.mark.parametrize("signoff", ["Thanks,\nKim", "Thanks, Kim", "-Abhishek", "Cheers,\nDana", "Med venlig hilsen\nAnders Andersen"])
def test_signoff_kept(signoff):
    assert clean(f"The report is attached.\n\n{signoff}\n") == f"The report is attached.\n\n{signoff}"


def test_contact_block_after_signoff_removed():
    text = "Please review.\n\nThanks,\nKim Ward\nManager, West Gas Origination\nEnron North America\n713-345-7566\nkim.ward@enron.com\n"
    res = extract_author_text(text)
    assert res.text == "Please review.\n\nThanks,\nKim Ward"
    assert [z.reason for z in res.removed if z.kind == "signature"]


def test_contact_block_without_closing():
    assert clean("Call me if you have any questions\n\nStephane Brodeur\n(403) 974-6721") == "Call me if you have any questions\n\nStephane Brodeur"


def test_ps_after_signoff_is_kept():
    text = "Done.\n\nThanks,\nKim\n\nP.S. Do not forget the lunch on Friday, it is at noon in the big room."
    assert clean(text) == text


@pytest.mark.parametrize(
    "footer",
    ["Sent from my iPhone", "Sent from my Verizon Wireless BlackBerry", "Get Outlook for iOS<https://aka.ms/o0ukef>", "Gesendet von meinem iPhone", "Envoyé de mon iPad"],
)
def test_device_footer(footer):
    res = extract_author_text(f"Yes, go ahead.\n\n{footer}\n")
    assert res.text == "Yes, go ahead."
    assert kinds(res) == ["device_footer"]


def test_sent_from_prose_is_not_a_footer():
    text = "Here is another email\n\nSent from my desk, is much easier than my mobile phone."
    assert clean(text) == text


def test_disclaimer_removed():
    text = (
        "Numbers attached.\n\nBest,\nLee\n\nCONFIDENTIALITY NOTICE: This email and any attachments are confidential and intended "
        "solely for the addressee.\nIf you received it in error, delete it."
    )
    res = extract_author_text(text)
    assert res.text == "Numbers attached.\n\nBest,\nLee"
    assert "disclaimer" in kinds(res)
    text2 = "Numbers attached.\n\nThis email and any attachments are confidential and may be privileged. If you are not the intended recipient, notify us."
    assert clean(text2) == "Numbers attached."


def test_caution_banner_at_top_removed_body_kept():
    text = "CAUTION: This email originated from outside of the organization. Do not click links.\n\nHi team,\n\nAll good.\n\nThanks,\nJo"
    assert clean(text) == "Hi team,\n\nAll good.\n\nThanks,\nJo"


def test_disclaimer_like_sentence_kept():
    text = "This message is only relevant for those going to UBS.\n\nThanks,\nJohn"
    assert clean(text) == text


def test_mailing_list_footer():
    text = "Question about buckets.\n\n-Abhishek Kona\n\n\n__\nriak-users mailing list\nriak-users@lists.basho.com\nhttp://lists.basho.com/mailman/listinfo/riak-users"
    assert clean(text) == "Question about buckets.\n\n-Abhishek Kona"


def test_whitespace_normalisation():
    text = "Hi Bob,  \r\n\r\n\r\n\r\nLine\u00a0two\t \r\nend\r"
    assert clean(text) == "Hi Bob,\n\nLine two\nend"
    assert clean("") == "" and extract_author_text(None).text == ""


def test_html_to_text_structure():
    html = (
        "<html><head><style>p{color:red}</style><script>x()</script></head><body>"
        "<p>First para</p><p>Second<br>line</p><div>div one</div><div>div two</div>"
        "<ul><li>apple</li><li>pear</li></ul><ol><li>one</li></ol><p>a&nbsp;b</p></body></html>"
    )
    assert html_to_text(html) == "First para\n\nSecond\nline\n\ndiv one\ndiv two\n\n- apple\n- pear\n\n1. one\n\na b"


@pytest.mark.parametrize(
    "html",
    [
        '<div dir="ltr">Hi. I am fine.<div><br></div><div>Thanks,</div><div>Alex</div></div><div class="gmail_quote"><div class="gmail_attr">On Thu, Jun 26, 2014 at 2:14 PM, Bob &lt;b@x.com&gt; wrote:<br></div><blockquote class="gmail_quote">Hello! How are you?</blockquote></div>',
        '<div>Hi. I am fine.<br><br>Thanks,<br>Alex</div><blockquote type="cite"><div>Hello! How are you?</div></blockquote>',
        '<div>Hi. I am fine.<br><br>Thanks,<br>Alex</div><hr style="display:inline-block"><div id="divRplyFwdMsg"><b>From:</b> Bob<br><b>Sent:</b> Monday<br><b>To:</b> Alex</div><div>Hello! How are you?</div>',
        '<div>Hi. I am fine.<br><br>Thanks,<br>Alex</div><div id="appendonsend"></div><div>Hello! How are you?</div>',
        '<div>Hi. I am fine.<br><br>Thanks,<br>Alex</div><div class="ydp1yahoo_quoted"><div>Hello! How are you?</div></div>',
        '<div class="WordSection1"><p class="MsoNormal">Hi. I am fine.</p><p class="MsoNormal">&nbsp;</p><p class="MsoNormal">Thanks,</p><p class="MsoNormal">Alex</p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p class="MsoNormal"><b>From:</b> Bob</p></div><p class="MsoNormal">Hello! How are you?</p></div>',
    ],
)
def test_html_quote_containers(html):
    res = extract_author_text(None, html)
    assert res.text == "Hi. I am fine.\n\nThanks,\nAlex"
    assert "Hello" in (res.quoted or "")


def test_html_structure_used_when_plain_text_has_no_markers():
    text = "Hi. I am fine.\n\nThanks,\nAlex\n\nHello! How are you?"
    html = '<div>Hi. I am fine.<br><br>Thanks,<br>Alex</div><blockquote type="cite">Hello! How are you?</blockquote>'
    res = extract_author_text(text, html)
    assert res.text == "Hi. I am fine.\n\nThanks,\nAlex"
    assert "html" in kinds(res)
    # plain text wins when it has its own markers
    assert extract_author_text("Yes\n\n> q", html).text == "Yes"


def test_learn_signatures_on_synthetic_user():
    block = "Dana Smith\nHead of Growth, Acme Corp\n+1 (555) 010-2345 | dana@acme.example\nwww.acme.example"
    bodies = []
    for k in range(10):
        body = f"Message number {k} about topic {k * 7}.\n\nThanks,\n{block}\n"
        if k % 3 == 0:
            body += f"\nOn Mon, Jan {k + 1}, 2024 at 9:00 AM Bob <bob@x.com> wrote:\n> earlier {k}\n"
        bodies.append(body)
    sigs = learn_signatures(bodies)
    assert sigs == ["Head of Growth, Acme Corp\n+1 (555) 010-2345 | dana@acme.example\nwww.acme.example"]
    res = extract_author_text(bodies[1], signatures=sigs)
    assert res.text == "Message number 1 about topic 7.\n\nThanks,\nDana Smith"
    assert any("learned" in z.reason for z in res.removed)
    # a block that appears in too few messages is not learned
    assert learn_signatures(bodies[:2]) == []


def test_dataclasses_are_frozen():
    z = Zone("quote", "x", "r")
    with pytest.raises(Exception):
        z.kind = "y"  # type: ignore[misc]


# ---------------------------------------------------------------- contact-block rules (2026-12)


def test_name_with_postnominals_is_a_name_and_title_line_is_not():
    from mailvoice.clean import _rules as rules

    assert rules.is_name_line("John E. Doe, Ph.D.")
    assert rules.is_name_line("Ann Lee, MBA, CPA")
    assert not rules.is_name_line("President")  # a title is contact info, not a sign-off name
    assert not rules.is_name_line("Acme Corp")
    assert rules.is_sig_like("John E. Doe, Ph.D.")  # the final '.' of 'Ph.D.' does not end a sentence


def test_title_under_the_name_goes_with_the_contact_block():
    text = "Thanks for the help.\n\nJohn E. Doe, Ph.D.\nPresident\nAcme Research\njohn@example.com\nwww.example.com\n"
    res = extract_author_text(text)
    assert res.text == "Thanks for the help.\n\nJohn E. Doe, Ph.D."
    assert "President" in res.removed[-1].text and res.removed[-1].kind == "signature"


def test_last_paragraph_contact_block_without_a_name_line():
    text = "See you Monday.\n\nParking & Transportation Desk\nAcme Corp\nparking@acme.com\n713-555-0100\n"
    res = extract_author_text(text)
    assert res.text == "See you Monday."
    assert res.removed[-1].reason == "contact block in the last paragraph"
    # prose with a link in the last paragraph is not a contact block
    prose = "Details below.\n\nThe slides are at www.example.com\nand the notes at docs.example.com\nfor the team\n"
    assert clean(prose) == prose.strip()


def test_name_and_phone_fused_on_the_last_line():
    assert clean("Kim, can you call me on receipt?\n\nBarry Tycholiz - 713-853-1587.\n") == "Kim, can you call me on receipt?"
    assert clean("I am in all day today.\n\nBT   3-1587.\n") == "I am in all day today."
    # a sentence with a number (even under a one-word line that looks like a name), or a message that
    # is only that line, is kept
    assert clean("Sure.\n\nCall me at 713-853-1587.\n") == "Sure.\n\nCall me at 713-853-1587."
    assert clean("Will do.\n\nSure.\nCall me back at 713-853-1587 today.\n").endswith("713-853-1587 today.")
    assert clean("Barry - 713-853-1587\n") == "Barry - 713-853-1587"


def test_prose_like_separates_sentences_from_contact_lines():
    from mailvoice.clean import _rules as rules

    assert rules.is_prose_like("Call me at 713-853-1587.")
    assert rules.is_prose_like("and the notes at docs.example.com")
    assert not rules.is_prose_like("Vice President of Sales")
    assert not rules.is_prose_like("IT Manager, Acme US")
    assert not rules.is_prose_like("phone: 713-853-1587")
    assert not rules.is_prose_like("1400 Smith St., Houston, TX")


# ---------------------------------------------------------------- real office mail (issue 18)


@pytest.mark.parametrize("indent", ["", "                    "])
@pytest.mark.parametrize("gap", ["", "\n\n"])
def test_lotus_notes_header_takes_the_sender_name_line(indent, gap):
    text = (
        "Fine, let us go with Tuesday.\n\nKim\n\n\n"
        f"{indent}John Smith\n{indent}10/22/2001 03:15 PM\n{gap}"
        "To: Kim Lee/HOU/ECT@ECT\ncc: Bob Jones/HOU/ECT@ECT\nSubject: Re: deal\n\nCan we meet?\n"
    )
    res = extract_author_text(text)
    assert res.text == "Fine, let us go with Tuesday.\n\nKim"
    assert res.removed[0].kind == "quote" and res.removed[0].text.lstrip().startswith("John Smith")


def test_lotus_notes_name_with_notes_hierarchy_and_a_sentence_above_a_date_stays():
    hier = "Fine.\n\nJohn Smith/HOU/ECT\n10/22/2001 03:15 PM\nTo: Kim Lee/HOU/ECT@ECT\ncc:\nSubject: Re: deal\n\nold"
    assert clean(hier) == "Fine."
    # a sentence (not a name alone) above a date line is the author's
    prose = "Sounds good, see you then.\nWe can meet on\n10/22/2001 03:15 PM\nTo: Kim Lee/HOU/ECT@ECT\ncc:\nSubject: Re: deal\n\nold"
    assert clean(prose).startswith("Sounds good, see you then.\nWe can meet on")


@pytest.mark.parametrize("rule", ["=" * 42, "_" * 42, "- " + "-" * 40, "*" + "-" * 40 + "*"])
def test_ruled_signature_block_removed_signoff_kept(rule):
    text = (
        "Sounds good to me.\n\nAnn\n\n"
        f"{rule}\n   Ann Example\n   Research Associate\n   Department of Physics\n   University of Somewhere\n"
        "   1 College Road, Somewhere, ST 12345\n   Voice: (555) 555-0100\n   FAX:   (555) 555-0101\n"
        f"   Internet: ann@example.edu\n{rule}\n"
    )
    res = extract_author_text(text)
    assert res.text == "Sounds good to me.\n\nAnn"
    assert res.removed[-1].kind == "signature" and "Internet: ann@example.edu" in res.removed[-1].text


def test_ruled_one_line_card_with_a_blurb_inside_the_box():
    text = (
        "Do you know which app is making the connection?\n\n" + "=" * 60 + "\n"
        "Jo Bloggs | Acme Design | www.acme.ie | Tel : 086-5550100\n\n"
        '" Our core product lets organisations publish information\nto their web site quickly. "\n' + "=" * 60 + "\n"
    )
    assert clean(text) == "Do you know which app is making the connection?"


def test_ruled_block_in_the_middle_or_with_prose_is_kept():
    # a ruled box that is a quoted item (a URL, a date, a title) is content, not a signature
    news = "Look at this:\n----\nhttp://example.com/story.html\n11:14 2002-09-13\n200 NUKES LOST\n" + "-" * 40 + "\n\nScary.\n"
    assert clean(news) == news.strip()
    prose = "It was coined later.\n\n" + "-" * 40 + "\nMy permanent email address is kim@example.com\n" + "-" * 40 + "\n"
    assert "My permanent email address is kim@example.com" in clean(prose)
    box = "Results:\n" + "=" * 30 + "\nJohn Smith | 555-0100\n" + "=" * 30 + "\nMore prose follows here, with the real point.\n"
    assert clean(box) == box.strip()


def test_contact_block_with_organisation_lines_and_a_postal_address():
    oberman = (
        "It has worked well for years.\n\nR. Kevin Oberman, Network Engineer\nEnergy Sciences Network (ESnet)\n"
        "Ernest O. Lawrence Berkeley National Laboratory (Berkeley Lab)\nE-mail: oberman@es.net\t\t\tPhone: +1 510 486-8634\n"
    )
    assert clean(oberman) == "It has worked well for years."
    address = "Could anyone recommend a monitoring service?\n\nAdrian Murphy\n2020 Strategies\nBeechlawn\nCloncrane\nCo Offaly\nIreland\n"
    assert clean(address) == "Could anyone recommend a monitoring service?\n\nAdrian Murphy"
    # a short list of place names in prose is not an address block
    trip = "We visited these places:\n\nDublin\nCork\nGalway\n"
    assert clean(trip) == trip.strip()


def test_contact_block_under_the_signoff_and_full_name_line():
    full = "Will do.\n\nThanks,\nKim\n\nKim Lee\nSenior Analyst\nAcme Corp\n1400 Smith St.\nHouston, TX 77002\nPhone: 713-555-0100\nFax: 713-555-0101\nkim.lee@acme.com\n"
    assert clean(full) == "Will do.\n\nThanks,\nKim"
    name_only = extract_author_text("Will do.\n\nThanks,\nKim\n\nKim Lee\n")
    assert name_only.text == "Will do.\n\nThanks,\nKim"
    assert name_only.removed[-1].reason.startswith("full name under the sign-off")
    # after a quote too (the user's full name sits above their '-- ' block)
    after_quote = "Any ideas?\n\nThanks,\nMarc\n\n> old question\n> from Bob\n\nMarc Baaden\n\n-- \nDr. Marc Baaden\n"
    assert clean(after_quote) == "Any ideas?\n\nThanks,\nMarc"
    # a different name, or the same name again, is kept: a second person, or a repeated sign-off
    assert clean("Will do.\n\nThanks,\nKim\n\nBob Jones\n").endswith("Bob Jones")
    assert clean("Will do.\n\nThanks, Kim\n\nKim\n").endswith("Kim")


def test_disclaimer_after_an_underscore_rule():
    text = (
        "See attached.\n\nRegards,\nAnn\n\n" + "_" * 32 + "\n"
        "Privileged/Confidential Information may be contained in this message. If you are not the addressee\n"
        "indicated in this message (or responsible for delivery of the message to such person), you may not\n"
        "copy or deliver this message to anyone.\n" + "".join(f"Further legal line {k}.\n" for k in range(20))
    )
    res = extract_author_text(text)
    assert res.text == "See attached.\n\nRegards,\nAnn"
    assert res.removed[-1].kind == "disclaimer"


def test_pgp_armour_and_dash_escaping():
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nOk, it works now.\n- -- and the dash stays.\n\nAj\n\n"
        "- -- \nAJ McKee\n\n-----BEGIN PGP SIGNATURE-----\nVersion: GnuPG v1\n\niQA/AwUBPV1dFIHmA/TOOP95EQL\n=yGuw\n"
        "-----END PGP SIGNATURE-----\n"
    )
    res = extract_author_text(text)
    assert res.text == "Ok, it works now.\n-- and the dash stays.\n\nAj"
    assert any(z.reason == "OpenPGP armour" for z in res.removed)


def test_scissors_marks_go_with_the_quote():
    text = "On Tue, 2002-07-30 at 10:06, Dan wrote:\n> Hello?\n\n----8<\n\n> more text\n\n---->8\n\nCan someone translate this?\n\nThanks\n"
    assert clean(text) == "Can someone translate this?\n\nThanks"
