"""EmailAI-shaped training rows and the parser of EmailAI's drafting request (draft-with-knowledge.ts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import emailai_prompts as up  # noqa: E402

from mailvoice.dataset.build import DatasetOptions, Example, build_dataset  # noqa: E402
from mailvoice.dataset.emailai_format import (  # noqa: E402
    FORK_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    VARIANTS,
    emailai_rows,
    escape_html,
    format_reply,
    is_emailai_request,
    js_iso,
    parse_emailai_request,
    parse_nudge_request,
    parse_reply,
    remove_excessive_whitespace,
    render_fork_user_prompt,
    render_user_prompt,
    thread_for,
    to_emailai_example,
    variant_of_system,
)
from mailvoice.sources.record import MailRecord  # noqa: E402


def _reply_example(**kw):
    base = dict(id="abc", thread_id="t1", date="2024-03-05T16:00:00+00:00", instruction="Write a reply to Sam.",
                input="Could we do the site visit on Thursday?\n\nWhere do we park?",
                output="Hi Sam!\n\nThursday works. Park by the gate.\n\nCheers,\nDana", recipient="Sam",
                subject="Re: Site visit")
    base.update(kw)
    return Example(**base)


def test_system_prompt_is_upstream_verbatim():
    assert SYSTEM_PROMPT == up.CURRENT_SYSTEM


def test_helpers_match_upstream_semantics():
    assert escape_html("a & b < c > \"d\" 'e' `f`") == "a &amp; b &lt; c &gt; &quot;d&quot; &#x27;e&#x27; &#x60;f&#x60;"
    assert remove_excessive_whitespace("a\u200b b\r\n\r\n\r\n\r\nc  \n  d") == "a b\n\nc\nd"
    assert js_iso("2024-03-05T16:00:00+00:00") == "2024-03-05T16:00:00.000Z"
    assert js_iso("2024-03-05T17:00:00.123456+01:00") == "2024-03-05T16:00:00.123Z"
    for kw in ({}, {"about": "I run a garden design studio.", "writing_style": "Warm, short, exclamation marks.",
                    "knowledge": "Parking: by the gate.", "history": "Sam is a client since 2022.",
                    "email_history": {"relevantEmails": ["Past: parking by the gate"], "notes": None},
                    "calendar": ["Thu 10:00", "Fri 14:00"], "mcp": "CRM: Sam, active project"}):
        ours = render_user_prompt(
            up.THREAD, account_email="dana@willowcreek-design.example", about=kw.get("about"),
            knowledge_base=kw.get("knowledge"), sender_history=kw.get("history"),
            email_history=(kw.get("email_history") or {}).get("relevantEmails", ()),
            writing_style=kw.get("writing_style"), calendar_times=kw.get("calendar", ()),
            external_context=kw.get("mcp"), today="2024-03-05T16:00:00.000Z")
        assert ours == up.current_user_prompt(up.THREAD, email="dana@willowcreek-design.example",
                                              today="2024-03-05T16:00:00.000Z", **kw)


def test_to_emailai_example_shape():
    ex = _reply_example()
    thread = thread_for(ex)
    assert thread == [{"from": "Sam <EMAIL>", "to": "<EMAIL>", "subject": "Site visit", "content": ex.input}]
    row = to_emailai_example(ex, thread, writing_style="Warm and brief.", variant_name="upstream")
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["id"] == "abc" and row["thread_id"] == "t1"
    assert row["messages"][1]["content"] == up.current_user_prompt(
        thread, email="<EMAIL>", writing_style="Warm and brief.", today="2024-03-05T16:00:00.000Z")
    assert json.loads(row["messages"][2]["content"]) == {"reply": ex.output}
    # and the gateway's parser reads it back
    p = parse_emailai_request(row["messages"][:2])
    assert p.account_email == "<EMAIL>" and p.writing_style == "Warm and brief."
    assert p.thread[-1]["content"] == remove_excessive_whitespace(ex.input)
    assert p.thread[-1]["from"] == "Sam <EMAIL>" and p.thread[-1]["subject"] == "Site visit"
    assert parse_reply(row["messages"][2]["content"]) == ex.output


def test_fork_variant_is_the_default_and_matches_the_fork():
    """The fork's prompt (calldatasystems/emailai draft-with-knowledge.ts): its own system text,
    <historical_context>, no <to>, nothing escaped; the parser reads it back without unescaping."""
    assert FORK_SYSTEM_PROMPT == up.FORK_SYSTEM and "JSON" not in FORK_SYSTEM_PROMPT
    # the fork's system text as its Ollama provider sends it: the AI SDK's json mode appends the schema
    assert VARIANTS["fork"].system.startswith(up.FORK_SYSTEM + "\n\nJSON schema:\n{")
    assert VARIANTS["upstream"].system == up.CURRENT_SYSTEM
    for kw in ({}, {"about": "Designer.", "knowledge": "Parking: by the gate.", "history": "Client since 2022.",
                    "writing_style": "Warm."}):
        ours = render_fork_user_prompt(up.THREAD, account_email="dana@x.example", about=kw.get("about"),
                                       knowledge_base=kw.get("knowledge"), sender_history=kw.get("history"),
                                       writing_style=kw.get("writing_style"), today="2024-03-05T16:00:00.000Z")
        assert ours == up.fork_user_prompt(up.THREAD, email="dana@x.example", **kw)
    ex = _reply_example(input="Tom & Jerry &amp; co say hi")
    row = to_emailai_example(ex, thread_for(ex))
    assert row["messages"][0]["content"] == VARIANTS["fork"].system
    assert row["messages"][1]["content"] == up.fork_user_prompt(thread_for(ex), email="<EMAIL>")
    p = parse_emailai_request(row["messages"][:2])
    assert p.variant == "fork" and p.thread[0]["content"] == "Tom & Jerry &amp; co say hi"
    assert p.schema == {"type": "object", "properties": {"reply": {"type": "string", "description":
                        "The complete email reply draft incorporating knowledge base information"}},
                        "required": ["reply"], "additionalProperties": False,
                        "$schema": "http://json-schema.org/draft-07/schema#"}
    assert variant_of_system(row["messages"][0]["content"]) == "fork"
    assert variant_of_system(up.CURRENT_SYSTEM) == "upstream"


def test_fork_request_with_email_tags_and_entities_in_bodies():
    thread = [dict(m) for m in up.THREAD]
    thread[0]["content"] = "Literal &amp; stays, and so does <b>bold</b>.\n</email>\n<email> is text here"
    thread[2]["content"] = "See </body></email> ha & <to>x</to>"
    msgs = up.fork_request(thread, email="dana@willowcreek-design.example", history="Met at the fair")
    p = parse_emailai_request(msgs, require_system=True)
    assert p is not None and p.variant == "fork" and len(p.thread) == 3
    assert p.account_email == "dana@willowcreek-design.example" and p.sender_history == "Met at the fair"
    for got, want in zip(p.thread, thread):
        assert got["content"] == remove_excessive_whitespace(want["content"])
        assert got["from"] == want["from"] and got["date"] == want["date"] and got["to"] == ""
    # the same thread the upstream way (escaped) reads back the same texts
    q = parse_emailai_request(up.current_request(thread, email="dana@willowcreek-design.example"))
    assert q.variant == "upstream" and [e["content"] for e in q.thread] == [e["content"] for e in p.thread]


def test_nudge_request_is_recognised_as_a_nudge_only():
    thread = [up.THREAD[0], dict(up.THREAD[1], content="Any news? & <b>")]
    msgs = up.nudge_request(thread)
    n = parse_nudge_request(msgs)
    assert n is not None and n.kind == "nudge" and n.account_email == up.THREAD[1]["from"]
    assert n.thread[-1]["content"] == "Any news? & <b>" and n.today == "2024-03-05T16:00:00.000Z"
    assert parse_emailai_request(msgs) is None  # not a drafting call
    assert parse_nudge_request(up.fork_request(thread, email="d@x.example")) is None
    assert parse_nudge_request([{"role": "system", "content": up.NUDGE_SYSTEM},
                                {"role": "user", "content": "Summarise this."}]) is None


def test_rows_only_for_replies():
    rows = list(emailai_rows([_reply_example(), _reply_example(id="n", input="", subject="Hello")]))
    assert [r["id"] for r in rows] == ["abc"]


def test_parse_current_request_all_blocks():
    msgs = up.current_request(
        up.THREAD, email="dana@willowcreek-design.example", about="I run a garden design studio.",
        knowledge="Parking: by the gate.", history="Sam is a client since 2022.",
        email_history={"relevantEmails": ["Past thread A", "Past thread B"], "notes": "Prefers mornings"},
        writing_style="Warm, short.\nExclamation marks.", calendar=["Thu 10:00", "Fri 14:00"], mcp="CRM: active")
    p = parse_emailai_request(msgs)
    assert p is not None and is_emailai_request(msgs)
    assert p.account_email == "dana@willowcreek-design.example"
    assert p.about == "I run a garden design studio."
    assert p.writing_style == "Warm, short.\nExclamation marks."
    assert p.knowledge_base == "Parking: by the gate." and p.sender_history == "Sam is a client since 2022."
    assert p.email_history == ["Past thread A", "Past thread B"] and p.email_history_notes == "Prefers mornings"
    assert p.calendar_availability == "Thu 10:00, Fri 14:00" and p.external_context == "CRM: active"
    assert p.today == "2024-03-05T16:00:00.000Z" and p.instructions is None
    assert p.system.startswith("You are an expert assistant that drafts email replies")
    assert len(p.thread) == 3
    for got, want in zip(p.thread, up.THREAD):
        assert got["from"] == want["from"] and got["to"] == want["to"] and got["subject"] == want["subject"]
        assert got["date"] == want["date"]
        assert got["content"] == remove_excessive_whitespace(want["content"])
    assert "</body></email> ha" in p.latest["content"] and '"fine"' in p.latest["content"]  # escaped upstream


def test_parse_minimal_current_request():
    p = parse_emailai_request(up.current_request(up.THREAD[:1], email="me@x.example"))
    assert p.account_email == "me@x.example" and len(p.thread) == 1
    assert p.about is p.writing_style is p.knowledge_base is p.sender_history is None
    assert p.email_history == []


def test_parse_legacy_request():
    thread = [dict(m) for m in up.THREAD[:2]]
    thread[1]["content"] = "Thursday works! I'll check on parking.\n\nDana"
    msgs = up.legacy_request(thread, about="Designer.", instructions="Always sign 'D'", history="Old client")
    p = parse_emailai_request(msgs)
    assert p is not None
    assert p.account_email == "sam@client.example"  # the `to` of the last email, as upstream said
    assert p.instructions == "Always sign 'D'" and p.sender_history == "Old client" and p.about == "Designer."
    assert [t["date"] for t in p.thread] == [t["date"] for t in thread]
    assert p.thread[0]["content"] == remove_excessive_whitespace(thread[0]["content"])


def test_parse_legacy_unknown_date():
    thread = [{k: v for k, v in up.THREAD[0].items() if k != "date"}]
    p = parse_emailai_request(up.legacy_request(thread))
    assert "date" not in p.thread[0]


def test_parse_tolerates_sdk_variants():
    msgs = up.current_request(up.THREAD, email="d@x.example")
    # JSON-mode SDKs append the schema to the system prompt; OpenAI clients may send content parts
    msgs[0]["content"] += '\nJSON schema:\n{"type":"object","properties":{"reply":{"type":"string"}}}'
    msgs[1]["content"] = [{"type": "text", "text": msgs[1]["content"]}]
    p = parse_emailai_request(msgs)
    assert p and p.account_email == "d@x.example" and len(p.thread) == 3
    assert p.schema == {"type": "object", "properties": {"reply": {"type": "string"}}}
    assert parse_emailai_request(up.current_request(up.THREAD, email="d@x.example")).schema is None
    # no system message at all: recognised, unless the caller (the gateway) requires the drafting one
    assert parse_emailai_request(msgs[1:]).account_email == "d@x.example"
    assert parse_emailai_request(msgs, require_system=True) is not None
    assert parse_emailai_request(msgs[1:], require_system=True) is None
    assert parse_emailai_request([{"role": "system", "content": "Summarise."}, msgs[1]], require_system=True) is None


def test_long_bodies_are_truncated_like_upstream():
    thread = [dict(up.THREAD[0], content="word " * 1000)]
    p = parse_emailai_request(up.current_request(thread, email="d@x.example"))
    assert p.thread[0]["content"].endswith("...") and len(p.thread[0]["content"]) == 3003


@pytest.mark.parametrize("msgs", [
    [],
    [{"role": "system", "content": SYSTEM_PROMPT}],
    [{"role": "user", "content": "Write an email to Sam.\nSubject: hi"}],
    [{"role": "user", "content": "Here is the context of the email thread (from oldest to newest):\nnothing"}],
    [{"role": "user", "content": "Here is the context of the email thread (from oldest to newest):\n"
                                 "Please write a reply to the email."}],  # no <email>
    [{"role": "user", "content": None}],
])
def test_other_requests_are_not_recognised(msgs):
    assert parse_emailai_request(msgs) is None


def test_parse_reply():
    assert parse_reply('{"reply": "Hi!"}') == "Hi!"
    assert parse_reply('```json\n{"reply": "Hi!"}\n```') == "Hi!"
    assert parse_reply('Sure: {"reply": "Hi!"} done') == "Hi!"
    assert parse_reply("Hi!") is None and parse_reply('{"reply": 3}') is None
    assert format_reply('He said "hi"') == '{"reply": "He said \\"hi\\""}'


def test_build_writes_emailai_files_with_the_same_split(tmp_path):
    recs = []
    topics = ["roses", "the pond", "gravel", "benches", "herbs", "tulips", "willow", "compost", "lavender",
              "slate", "orchard", "ferns"]
    for i, t in enumerate(topics):
        recs.append(MailRecord(
            message_id=f"m{i}@x", thread_id=f"th{i}", date=f"2024-03-{i + 1:02d}T10:00:00+00:00",
            from_addr="dana@x.example", from_name="Dana", to=(f"sam.reed@c{i}.example",), subject=f"Re: {t}",
            text=(f"Yes, let's sort {t} on day {i} — I'll bring what we need for {t}!\n\nCheers,\nDana\n\n"
                  f"On Mon, 4 Mar 2024 at 09:00, Sam <sam.reed@c{i}.example> wrote:\n> Can we talk about {t}"
                  f" this week? My number is +1 415 555 01{i:02d}.\n") if i % 3 else
                 f"Hi Sam, a fresh note about {t} and nothing else for day {i}.\n\nCheers,\nDana\n"))
    out = tmp_path / "d"
    meta = build_dataset(recs, out, DatasetOptions(min_emails=3, emailai_format=True))
    def ids(name):
        return [json.loads(line)["id"] for line in (out / name).read_text().splitlines()]
    for split in ("train", "val"):
        chat = {json.loads(line)["id"]: json.loads(line) for line in (out / f"{split}_chat.jsonl").read_text().splitlines()}
        em = ids(f"{split}_emailai.jsonl")
        assert set(em) <= set(chat)
        assert set(em) == {i for i, c in chat.items() if "replying to" in c["messages"][1]["content"]}
    assert meta["files"]["train_emailai"] + meta["files"]["val_emailai"] == 8
    row = json.loads((out / "train_emailai.jsonl").read_text().splitlines()[0])
    text = row["messages"][1]["content"]
    assert "555" not in text and "c1.example" not in text and "<PHONE>" in text  # the fork: not escaped
    assert row["messages"][0]["content"].startswith(FORK_SYSTEM_PROMPT) and meta["emailai_format"] == "fork"
    assert parse_emailai_request(row["messages"][:2]).thread[0]["from"] == "Sam <EMAIL>"
    build_dataset(recs, out, DatasetOptions(min_emails=3, emailai_format="upstream"))
    row = json.loads((out / "train_emailai.jsonl").read_text().splitlines()[0])
    assert "&lt;PHONE&gt;" in row["messages"][1]["content"] and row["messages"][0]["content"] == SYSTEM_PROMPT
