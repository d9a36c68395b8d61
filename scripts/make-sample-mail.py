#!/usr/bin/env python3
"""Generate the demo mailboxes that ship with mailvoice.

Writes two mbox files (default directory ``data-samples/mailboxes``):

``dana-sent.mbox``
    The "Sent" folder of Dana Whitfield <dana@willowcreek-design.example>, a
    fictional independent garden designer with a strong, consistent voice
    ("Hi Sam!" / "Morning Sam —", em-dashes, short punchy sentences, British
    spelling, pet phrases, garden metaphors, "Cheers,\\nDana" or
    "Warmly,\\nDana" for clients).  About 60% of her mails are replies with a
    quoted part in Gmail, Apple Mail, Outlook or "-----Original Message-----"
    form, written by the other party in their own neutral style.  The folder
    also holds deliberate noise for the cleaning stage:

    * a few received messages that are *not* from Dana,
    * two auto-replies from Dana's address (``Auto-Submitted: auto-replied``),
    * a few multipart/alternative messages with an HTML part,
    * a few threads (shared ``References`` root),
    * planted fake PII in three bodies (see ``PLANTED_PII``).

``contrast-sent.mbox``
    The sent mail of Marcus Bell <marcus.bell@northgate-logistics.example>, a
    formal, long-winded operations manager (American spelling, numbered
    lists, "Kind regards", no em-dashes, no exclamation marks).  Used as the
    "not Dana" class for style classifiers.

Everything is derived from fixed seeds: running the script twice produces
byte-identical files (``From `` separator dates come from the message dates,
never from the clock).  Standard library only.

Usage::

    python scripts/make-sample-mail.py [--out DIR]

or, from Python::

    mod.generate(Path("out"), dana_count=150, marcus_count=90) -> dict
"""

import argparse
import email.policy
import email.utils
import html
import json
import mailbox
import os
import random
import re
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

DEFAULT_OUT = Path("data-samples/mailboxes")
DANA_FILE = "dana-sent.mbox"
MARCUS_FILE = "contrast-sent.mbox"

DANA_SEED = 20250107
MARCUS_SEED = 20250214

START = datetime(2025, 1, 1)
END = datetime(2026, 6, 30, 23, 59)

POLICY = email.policy.default  # linesep "\n", utf-8 aware

DANA_SIGNATURE = ("Dana Whitfield\nWillow Creek Garden Design\n"
                  "+44 7700 900123 | willowcreek-design.example")

# Fake personal data planted in a few of Dana's bodies, for scrubbing tests.
PLANTED_PII = {
    "phone_international": "+44 7700 900456",
    "email": "g.ellery@brookside-surveys.example",
    "phone_national": "07700 900781",
}

# Dana is "away" in these windows: her two auto-replies fall inside them and
# none of her hand-written mail does.
HOLIDAYS = [
    (datetime(2025, 8, 11), datetime(2025, 8, 23), "Monday 25 August"),
    (datetime(2025, 12, 22), datetime(2026, 1, 3), "Monday 5 January"),
]

DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
             "Saturday", "Sunday"]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December"]


class Person(NamedTuple):
    name: str
    email: str
    first: str          # what the mailbox owner calls them
    group: str          # decides topics, sign-off, writing style
    sign: str = ""      # how they sign their own mail
    org: str = ""
    project: str = ""   # client job, for Dana's clients
    short: str = ""
    weight: int = 3

    @property
    def addr(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def domain(self) -> str:
        return self.email.split("@", 1)[1]


DANA = Person("Dana Whitfield", "dana@willowcreek-design.example", "Dana",
              "self", "Dana", "Willow Creek Garden Design")
MARCUS = Person("Marcus Bell", "marcus.bell@northgate-logistics.example",
                "Marcus", "self", "Marcus", "Northgate Logistics, Inc.")

# --------------------------------------------------------------------------
# Dana's world
# --------------------------------------------------------------------------

DANA_CONTACTS = [
    Person("Sam Ortiz", "sam.ortiz@ortizhome.example", "Sam", "client", "Sam",
           project="the back garden at Elm Road", short="Elm Road", weight=6),
    Person("Priya Raman", "priya.raman@ramanfamily.example", "Priya", "client",
           "Priya", project="the courtyard at Mill Lane", short="Mill Lane",
           weight=5),
    Person("Helen Carter", "helen@cartermail.example", "Helen", "client",
           "Helen", project="the cottage garden at Brook End",
           short="Brook End", weight=5),
    Person("Eleanor Voss", "eleanor.voss@vossandco.example", "Eleanor",
           "client", "Eleanor Voss", "Voss & Co",
           project="the roof terrace at Voss & Co", short="the roof terrace",
           weight=4),
    Person("Tom Hargreaves", "tom@hargreaves-estate.example", "Tom", "client",
           "Tom", project="the walled garden at Ashcombe", short="Ashcombe",
           weight=4),
    Person("Fiona MacLeod", "fiona@glenview-house.example", "Fiona", "client",
           "Fiona", project="the meadow at Glenview", short="Glenview",
           weight=4),
    Person("Rachel Kim", "rachel.kim@kimstudio.example", "Rachel", "client",
           "Rachel", project="the little garden on Quarry Street",
           short="Quarry Street", weight=4),
    Person("Oliver Brandt", "oliver.brandt@brandt-homes.example", "Oliver",
           "client", "Oliver Brandt", "Brandt Homes",
           project="the show homes at Orchard Rise", short="Orchard Rise",
           weight=3),
    Person("Grace Liu", "g.liu@maplecourt-school.example", "Grace", "client",
           "Grace Liu", "Maple Court Primary School",
           project="the school wildlife garden", short="Maple Court",
           weight=3),
    Person("James Okafor", "james@okafor-architects.example", "James",
           "architect", "James", "Okafor Architects",
           project="the Hillside House extension", short="Hillside House",
           weight=4),
    Person("Ben Marsh", "ben@fernhill-nursery.example", "Ben", "nursery",
           "Ben Marsh", "Fernhill Nursery", weight=5),
    Person("Raj Patel", "raj@greenleaf-trees.example", "Raj", "nursery",
           "Raj", "Greenleaf Trees", weight=3),
    Person("Anna Kowalski", "anna@bloomwholesale.example", "Anna", "nursery",
           "Anna Kowalski", "Bloom Wholesale Bulbs", weight=2),
    Person("Kate Doyle", "kate@cotswold-stone.example", "Kate", "stone",
           "Kate Doyle", "Cotswold Stone Supplies", weight=4),
    Person("Mike Dunn", "mike@dunn-groundworks.example", "Mike", "trade",
           "Mike", "Dunn Groundworks", weight=4),
    Person("Lucy Fenwick", "lucy@hollowayhire.example", "Lucy", "trade",
           "Lucy Fenwick", "Holloway Plant Hire", weight=2),
    Person("Nina Shah", "nina@ledgerline.example", "Nina", "admin",
           "Nina", "Ledgerline Accounts", weight=3),
    Person("Jo Pemberton", "jo.pemberton@postbox.example", "Jo", "friend",
           "Jo", weight=4),
    Person("Claire Ashby", "claire.ashby@inboxly.example", "Claire", "friend",
           "Claire", weight=3),
    Person("Marco Rossi", "marco@rossi-kitchen.example", "Marco", "friend",
           "Marco", weight=2),
    Person("Zoë Laurent", "zoe.laurent@postbox.example", "Zoë", "friend",
           "Zoë", weight=2),
    Person("Harriet Lane", "harriet.lane@inboxly.example", "Harriet",
           "friend", "Harriet", weight=2),
    Person("Margaret Whitfield", "margaret.whitfield@whitfield-family.example",
           "Mum", "family", "Mum", weight=4),
    Person("Rob Whitfield", "rob@whitfield-family.example", "Rob", "family",
           "Rob", weight=2),
    Person("Megan Price", "megan.price@gardenrooms-magazine.example", "Megan",
           "press", "Megan Price", "Editor, Garden Rooms Magazine", weight=2),
    Person("Chris Adeyemi", "secretary@riverside-allotments.example", "Chris",
           "community", "Chris Adeyemi",
           "Secretary, Riverside Allotment Society", weight=2),
]
CONTACT = {p.name: p for p in DANA_CONTACTS}

GROUP_TOPICS = {
    "client": ["proposal", "site_visit", "followup", "invoice", "advice",
               "thanks", "revision", "progress"],
    "architect": ["collab", "site_visit", "thanks"],
    "nursery": ["plant_order", "delivery", "supplier_thanks"],
    "stone": ["stone_quote", "stone_order", "delivery", "supplier_thanks"],
    "trade": ["works", "delivery"],
    "admin": ["accounts"],
    "friend": ["friend", "advice"],
    "family": ["family", "advice"],
    "press": ["decline"],
    "community": ["allotment"],
}

PLANTS = [
    "lavender 'Hidcote'", "Verbena bonariensis", "Stipa tenuissima",
    "Salvia 'Caradonna'", "Geranium 'Rozanne'", "Hydrangea 'Annabelle'",
    "Japanese anemones", "foxgloves", "Alchemilla mollis",
    "Nepeta 'Six Hills Giant'", "Euphorbia wulfenii", "hornbeam hedging",
    "yew", "multi-stem birch", "Amelanchier", "Pittosporum 'Tom Thumb'",
    "Miscanthus 'Morning Light'", "Astrantia major", "Persicaria 'Firetail'",
    "Sanguisorba 'Red Thunder'", "Hakonechloa", "hellebores",
    "Rosa 'Gertrude Jekyll'", "Clematis 'Bill MacKenzie'",
    "Echinacea purpurea", "Allium 'Purple Sensation'", "tulip 'Ballerina'",
    "Erigeron karvinskianus", "creeping thyme", "Sedum 'Matrona'",
    "Phlomis russeliana", "Libertia grandiflora", "Cornus 'Midwinter Fire'",
    "Viburnum tinus", "Digitalis 'Sutton's Apricot'", "Molinia 'Transparent'",
]
PLACES = [
    "the back border", "the courtyard", "the front garden", "the terrace",
    "the orchard corner", "the shady north bed", "the bed by the shed",
    "the gravel garden", "the pond edge", "the kitchen garden",
    "the long border", "the side return", "the woodland strip",
    "the raised beds", "the patio steps", "the far corner by the fence",
]
MATERIALS = [
    "Yorkstone paving", "Cotswold gravel", "oak sleepers",
    "corten steel edging", "reclaimed brick", "slate chippings",
    "granite setts", "limestone flags", "hoggin", "sandstone walling",
    "oak decking", "flint cobbles",
]
MULCHES = ["bark", "leaf mould", "peat-free compost", "well-rotted manure",
           "composted woodchip"]
TIMES = ["8am", "half eight", "9.30", "10ish", "first thing", "after lunch",
         "around 2", "4pm", "11", "half nine"]
THINGS = [
    "the cake", "the kind review", "recommending me to your neighbours",
    "the delivery this morning", "sorting the access so quickly",
    "the cuttings", "the tea and biscuits on site", "the lovely card",
    "squeezing me in at short notice", "the photos",
]
EVENTS = ["the Harrowgate Flower Show", "the county garden festival",
          "the Small Gardens Symposium", "the Spring Plant Fair",
          "the Chelsea fringe talks"]
REFERRALS = ["Lotte at Greenroom Gardens", "my friend Imogen",
             "Paddy Byrne", "the lovely folk at Hedgerow Studio"]
SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring",
           5: "spring", 6: "summer", 7: "summer", 8: "summer", 9: "autumn",
           10: "autumn", 11: "autumn"}
NEXT_SEASON = {"winter": "spring", "spring": "summer", "summer": "autumn",
               "autumn": "winter"}

WEATHER = {
    "spring": [
        "The garden's waking up — tulips everywhere.",
        "Everything's suddenly growing an inch a day.",
        "The blossom's out on the Amelanchier at the studio. Heaven.",
        "Late frost last night, so I'm fleecing everything in sight.",
    ],
    "summer": [
        "It's been bone dry here — the water butts are empty.",
        "The borders are at full tilt right now.",
        "Too hot to dig after eleven, so I'm starting at six.",
        "The roses have gone mad this year. Glorious.",
    ],
    "autumn": [
        "The leaves are coming down thick and fast.",
        "Perfect planting weather — the soil's still warm.",
        "Bulb season! My favourite.",
        "The asters are putting on a real show this week.",
    ],
    "winter": [
        "The ground's frozen solid, so it's plans and paperwork for now.",
        "Grey and damp here, but the hellebores are out.",
        "Winter pruning season — my secateurs are getting a workout.",
        "Bitterly cold on site today. Three pairs of socks.",
    ],
}

REPLY_OPENERS = [
    "Thanks for this!", "Lovely to hear from you.",
    "Thanks so much for getting back to me.", "Ah, brilliant — thank you.",
    "Good to hear from you, as ever.",
    "Sorry for the slow reply — it's been a week of mud and deadlines.",
    "Thank you — really helpful.",
]
PET_PHRASES = [
    "Happy to dig into this properly if it helps.",
    "No rush at all — whenever suits.",
    "Let's get our hands dirty!",
    "Quick thought: {quick}",
    "Happy to dig into this with you.",
    "No rush at all.",
]
QUICK_THOUGHTS = [
    "what if we swapped the lawn edge for {material2}?",
    "a little bench under the {plant3} would be lovely.",
    "we could try {plant2} in pots first and see how they get on.",
    "a water butt by the shed would save you a fortune.",
    "{plant3} would give you winter interest there.",
    "a mirror on the back wall would make the space feel twice the size.",
]
METAPHORS = [
    "Good ideas need a bit of time to take root.",
    "Let's let it bed in for a week and see how it feels.",
    "We can prune the list back later.",
    "It's all in the roots with this kind of thing.",
    "Think of it as planting a seed.",
    "No point forcing it — it'll flower when it's ready.",
    "Let's weed out what we don't need and see what's left.",
    "Slow and steady — like a hedge.",
]

# Each topic: subjects, what the other person wrote (for replies), Dana's
# openers, middle sentences and closing questions.  "{order_list}" expands to
# a multi-line list.
DANA_TOPICS = {
    "proposal": {
        "subjects": ["Proposal for {project}", "Design ideas for {short}",
                     "{short} — first draft", "Planting proposal for {short}",
                     "Concept plan — {short}"],
        "incoming": [
            "Thanks again for coming round last week. We've talked it over "
            "and would love to see a proposal for {project}. Our budget is "
            "roughly {amount}, though there is some flexibility if it makes a "
            "real difference.\n\nCould you let us know what the next steps "
            "are?",
            "We have finally made a decision and would like to go ahead with "
            "a design for {project}. Is there anything you need from us "
            "before you start? We can send over the survey drawings from "
            "when we bought the house.",
            "I have been looking at the sketches you left and they have "
            "really got us thinking. Would you be able to put together a "
            "more detailed proposal, including rough costs? We are hoping to "
            "have the work done by the end of {month_next}.",
        ],
        "open": ["I've attached the first draft of the proposal for {project}.",
                 "Here's the concept plan — rough round the edges, but the "
                 "bones are there.",
                 "So — the proposal's done, and I'm really pleased with how "
                 "it's come together.",
                 "Proposal attached! It's two pages, plus the planting list.",
                 "I've finally put pen to paper on {short}."],
        "middle": [
            "The big idea is to soften {place} with drifts of {plant} and "
            "{plant2}.",
            "I've kept the hard landscaping simple: {material} for the paths, "
            "nothing fussy.",
            "It comes in at about {amount}, which sits comfortably inside "
            "your budget.",
            "We could phase it — plant the structure this {season}, then fill "
            "in next year.",
            "I've left {place2} fairly open for now. Let it breathe.",
            "If the bench moves to {place2}, you'd catch the evening sun.",
            "The planting is mostly perennials, so it'll knit together in a "
            "season or two.",
            "I'd love to reuse the old {material2} — it's got so much "
            "character.",
            "Think of it as a skeleton. We'll flesh it out together.",
            "There's a colour theme running through it — purples, soft "
            "whites, a flash of rust.",
            "The {plant3} by the back door is staying. It's the heart of the "
            "garden.",
            "I've allowed for a proper soil prep day. Worth every penny.",
            "Maintenance should be light — an afternoon a month once it's "
            "established.",
        ],
        "ask": ["Have a look and let me know what sings and what doesn't?",
                "Shall we talk it through over a cuppa next week?",
                "Does that feel like the right direction?",
                "What do you both think?",
                "Is there anything you'd like me to prune back?"],
    },
    "revision": {
        "subjects": ["Changes to the plan for {short}",
                     "Revised layout — {short}", "{short} plan, version two"],
        "incoming": [
            "We've had a good look at the plan and we love most of it. A "
            "couple of things: we'd like to keep more lawn for the kids, and "
            "we're not sure about the {plant} near the patio. Would it be "
            "possible to adjust those?",
            "Thank you for the proposal. We are both very happy with the "
            "overall layout, but the total is a little higher than we had "
            "hoped. Is there a way to bring it down by ten percent or so "
            "without losing the main features?",
            "One more thought on the design: could we add a small vegetable "
            "bed somewhere sunny? We don't need much, just enough for salad "
            "and a few herbs.",
        ],
        "open": ["Revised plan attached — I think it's better for it, "
                 "honestly.",
                 "R:Good shout on the lawn. I've redrawn {place}.",
                 "Version two is done!",
                 "I've had another go at the layout."],
        "middle": [
            "I've swapped the {plant} for {plant2}, which is softer and far "
            "less thirsty.",
            "More lawn, fewer beds — and the kids still get their den corner.",
            "I've trimmed the {material} back and used gravel instead. That "
            "saves about {amount}.",
            "The veg bed fits nicely along {place2}. Full sun from ten till "
            "four.",
            "Everything else stays as it was. The bones are good.",
            "Sometimes you have to cut back hard to get better growth — this "
            "felt like that.",
            "The path now curves rather than running straight. Much more "
            "relaxed.",
            "I've kept the focal tree. Can't lose that.",
            "Costs are on page two, broken down by area.",
        ],
        "ask": ["Does this version feel more like you?",
                "Shall I send the planting list over too?",
                "Any other tweaks before I order?"],
    },
    "site_visit": {
        "subjects": ["Site visit {day}?", "Visit to {short}",
                     "Popping round on {day}", "Measuring up at {short}",
                     "Quick visit next week"],
        "incoming": [
            "Would you be able to come over and take a look at the garden "
            "some time next week? Mornings are generally better for us.",
            "Could we arrange a time for you to visit the site? The builders "
            "finish on {day}, so any time after that would be ideal.",
            "We would like to book you in for an initial consultation. What "
            "does your availability look like over the next fortnight?",
            "Are you able to visit before we finalise anything? It would "
            "help to walk the space together.",
        ],
        "open": ["{day} at {time} works brilliantly for me.",
                 "I can pop over on {day} — would {time} suit?",
                 "Let's get a visit in the diary.",
                 "R:Yes please! I'd love to see it.",
                 "How about {day}? I'm in your area anyway."],
        "middle": [
            "I'll bring the tape and the soil kit — it takes about an hour.",
            "If it's been raining, wellies are a must.",
            "Could you leave the side gate unlocked if you're out?",
            "I'd like to see {place} in the morning light, if possible.",
            "No need to tidy up. Honestly — I'd rather see it as it is.",
            "I'll take a few photos and a soil sample while I'm there.",
            "Is there room on the drive, or shall I park on the street?",
            "Dig out any old photos of the garden too. They're gold dust.",
            "It'd be great if you were both there — two sets of opinions is "
            "perfect.",
            "I'll sketch a few ideas on the spot. Nothing fancy.",
            "Have a think about how you actually use the space. Coffee spot? "
            "Kids? Dog?",
        ],
        "ask": ["Does that work for you?", "Shall I pencil it in?",
                "Is {time} too early?", "Would {day2} be better?"],
    },
    "followup": {
        "subjects": ["Following up on {short}", "Just checking in",
                     "Any thoughts on the plan?", "{short} — where we are",
                     "Picking this back up"],
        "incoming": [
            "Sorry for the silence on our end. Things have been hectic at "
            "work. We haven't forgotten about the garden, we just need a bit "
            "more time to decide.",
            "Just checking whether you received our last email about the "
            "plan? We didn't hear back and wanted to make sure it didn't go "
            "astray.",
        ],
        "open": ["N:Just following up on the plan I sent over.",
                 "Hope the last few weeks have been kind to you.",
                 "N:A little nudge — no rush at all.",
                 "I've been thinking about {short} again.",
                 "R:Sorry — I did get it, and I should have replied sooner!",
                 "R:Not at all — it did arrive, and I'm so sorry for the "
                 "silence."],
        "middle": [
            "I know these things take time. Ideas need a while to take root.",
            "If the budget's the sticking point, I'm happy to dig into this "
            "and trim it back.",
            "I've got a gap in {month_next} if you'd like to start then.",
            "The nursery is holding the {plant} for me until the end of the "
            "month.",
            "If anything in the plan isn't sitting right, just say. Nothing's "
            "set in stone — apart from the {material}, ha.",
            "No pressure whatsoever. Gardens wait for us.",
            "I could do a smaller first phase around {place} if that's "
            "easier.",
            "The {season_next} is a lovely time to plant, so there's no harm "
            "waiting a little.",
            "I've pencilled you in for {month_next}, but I can move things "
            "around.",
        ],
        "ask": ["Shall we have a quick call this week?",
                "Where are you both landing?", "Any thoughts so far?",
                "Would a smaller first phase help?"],
    },
    "invoice": {
        "subjects": ["Invoice {inv}", "Invoice for the {month} works",
                     "Final invoice — {short}", "{short} invoice"],
        "incoming": [
            "Could you resend the latest invoice? I think it went to my old "
            "work address.",
            "Thanks for all your work on the garden. Could you send us the "
            "final invoice when you have a moment? We'd like to settle it "
            "before the end of the month.",
            "Just a quick query on the invoice: the plants line looks higher "
            "than the estimate. Could you talk me through it?",
        ],
        "open": ["Invoice {inv} is attached — {amount} for the work on "
                 "{place}.",
                 "Here's the final invoice for {short}.",
                 "Attached is invoice {inv}. Sorry it's a bit late!",
                 "R:Of course — I've resent it to this address now.",
                 "R:Happy to explain the plants line!"],
        "middle": [
            "Payment within 30 days is perfect. No rush at all.",
            "Bank details are at the bottom, as ever.",
            "I've knocked off the extra {plant} — that was my mistake, not "
            "yours.",
            "The plants have my twelve-month guarantee, so do shout if "
            "anything sulks.",
            "I've split out the materials so you can see where everything "
            "went.",
            "The difference is the {plant2} — we went up a pot size so "
            "they'd make a show this year.",
            "The {material} came in under estimate, so that's reflected too.",
            "It's been such a joy working on this one.",
        ],
        "ask": ["Does it all look right to you?", "Any questions, just shout?",
                "Shall I pop round for a final walk-round in {month_next}?"],
    },
    "advice": {
        "subjects": ["Your {plant}", "Planting for {place}",
                     "That shady corner", "Sad-looking {plant}",
                     "Ideas for {place}"],
        "incoming": [
            "Quick question: the {plant} you put in last year are looking a "
            "bit sad. Yellowing leaves and not much growth. Is there anything "
            "we should be doing?",
            "We have a really shady spot in {place} where nothing seems to "
            "grow. Any suggestions for what might cope there?",
            "When is the right time to cut back the {plant}? I don't want to "
            "do it at the wrong moment and ruin them.",
            "Do you have any recommendations for something that flowers in "
            "late summer? The garden feels a bit flat from August onwards.",
        ],
        "open": ["R:Good question!",
                 "R:Ah, the {plant} — I had a feeling they'd sulk.",
                 "R:Right — a bit of plant first aid.",
                 "R:Oh, I love this question.", "R:Easy one, happily.",
                 "N:Quick thought on {place} — I was driving past and it "
                 "struck me.",
                 "N:I've been meaning to send you a note about the {plant}.",
                 "N:A little seasonal nudge for the garden."],
        "middle": [
            "It's almost always the watering. Deep and less often beats a "
            "daily splash.",
            "Give them a good mulch of {mulch} in spring.",
            "Don't feed them yet. Let them get their roots down first.",
            "Cut them back by a third after flowering and they'll bush out.",
            "If it's clay, add grit. Lots of it.",
            "{plant2} would be happier in that spot, honestly. Some plants "
            "just want a different home.",
            "I'd move them in {season_next}, once the soil's workable.",
            "Send me a photo? I can usually tell at a glance.",
            "For shade, you can't beat ferns and {plant3}.",
            "For late colour, think {plant2} and asters — they carry on till "
            "the frosts.",
            "Leave the seed heads over winter. The birds love them and they "
            "look gorgeous with frost on.",
            "Chelsea chop in late May — sounds brutal, works wonders.",
        ],
        "ask": ["How often are you watering at the moment?",
                "Is that spot in shade after lunch?",
                "Shall I pop in next time I'm passing?",
                "Want me to send a little planting list?"],
    },
    "thanks": {
        "subjects": ["Thank you!", "Thanks for today", "Lovely to see you",
                     "A little thank you"],
        "incoming": [
            "Just wanted to say how happy we are with the garden. It has "
            "completely changed how we use the house. Thank you.",
            "We had our first barbecue out on the new terrace at the weekend "
            "and everyone was so impressed. We've passed your name on to a "
            "couple of neighbours.",
            "Thanks for popping in yesterday. It was really useful to talk "
            "things through, and the cuttings are already in water.",
        ],
        "open": ["Just a quick note to say thank you.",
                 "R:What a lovely email to wake up to.",
                 "Thank you so much for {thing}.",
                 "R:Oh, this made my day!"],
        "middle": [
            "It honestly made my week.",
            "The garden's really coming into its own now.",
            "Referrals are the lifeblood of a tiny studio like mine, so it "
            "means a lot.",
            "I've already put the cuttings in the cold frame.",
            "Watching a garden settle in is my favourite part of the job.",
            "Give it another year and it'll be even better — it's only just "
            "finding its feet.",
            "Send me photos in {month_next}? I'd love to see it in full "
            "flower.",
            "I'll pop some {plant} seeds in the post for you.",
        ],
        "ask": ["Are you around for a coffee soon?",
                "Would you mind if I used a photo or two on the website?",
                "Shall I come back in {month_next} for a tidy-up?"],
    },
    "supplier_thanks": {
        "subjects": ["Thanks for the delivery", "Lovely plants!",
                     "Thank you — {job}"],
        "incoming": [
            "Just checking the delivery arrived in good order this morning. "
            "Let us know if anything is damaged or missing.",
            "Thank you for your payment. We look forward to your next order.",
        ],
        "open": ["R:Everything arrived in perfect shape — thank you!",
                 "The plants for {job} are gorgeous — thank you.",
                 "Just a quick thank you for squeezing us in.",
                 "R:All present and correct!"],
        "middle": [
            "The {plant} are the healthiest I've seen all year.",
            "The driver was a star — backed right up the side return.",
            "One pot of {plant2} was snapped, but honestly, don't worry "
            "about it.",
            "The {job} client was thrilled.",
            "You've saved my bacon this week.",
            "I'll be back for more in {month_next}, I'm sure.",
        ],
        "ask": ["Is the {plant3} back in stock yet?",
                "Shall I settle up by card?",
                "Are you doing the trade open day again this year?"],
    },
    "progress": {
        "subjects": ["Progress at {short}", "Update from site",
                     "{short} — week two", "How it's going at {short}"],
        "incoming": [
            "How is everything going on site? We are away until {day} so it "
            "would be great to get a quick update.",
            "The garden is looking very different already. Is everything "
            "still on track for finishing next week?",
        ],
        "open": ["Quick update from site!", "Good news — we're on track.",
                 "Right, here's where we are.",
                 "Well — it's been a muddy week!"],
        "middle": [
            "The {material} is down and looking smart.",
            "We've planted {place}. It looks a bit sparse now, but give it a "
            "season.",
            "The {plant} arrived from the nursery looking gorgeous.",
            "Mike's team finished the levels on {day}.",
            "We hit an old concrete footing under {place2}. Sorted now, but "
            "it cost us a day.",
            "Next up is the planting, weather permitting.",
            "I've watered everything in properly. Please keep it going if it "
            "stays dry.",
            "There's a skip on the drive until {day2}. Sorry!",
            "I'll send photos tonight.",
        ],
        "ask": ["Are you happy for us to carry on with {place2}?",
                "Could you leave the hose out for us?",
                "Shall we walk round together on {day2}?"],
    },
    "collab": {
        "subjects": ["Planting plan for {project}", "Levels drawing",
                     "Joint pitch — {short}", "Your drawings for {short}"],
        "incoming": [
            "I have attached the updated site plan with the new levels. "
            "Could you overlay the planting and send it back by the end of "
            "next week?",
            "The client has asked whether we can present the landscape and "
            "the building together. Are you free for a joint meeting on "
            "{day}?",
        ],
        "open": ["R:Thanks for the drawings!", "Planting overlay attached.",
                 "R:Love the new levels.", "R:Count me in for {day}.",
                 "N:I've had a first go at the planting for {short}."],
        "middle": [
            "I've shown the tree pits in green and the new hedging in blue.",
            "The retaining wall needs a planting pocket at the top — {plant} "
            "would spill over beautifully.",
            "Could we shift the drainage run away from {place}? It's where "
            "the roots will want to go.",
            "I'd like to specify {material} for the terrace to tie in with "
            "your cladding.",
            "Happy to dig into this on a call if that's quicker.",
            "The client's brief is quite loose, which I love. Room to grow.",
            "I can do the planting schedule by {day2}.",
        ],
        "ask": ["Does that work with your timeline?",
                "Shall we present it together?", "Can you send the CAD file?"],
    },
    "plant_order": {
        "subjects": ["Order for the {job} job", "Plant order — {month}",
                     "{qty} x {plant}", "Another order!", "Order for {day}"],
        "incoming": [
            "Thanks for your order. Before we confirm, could you let me know "
            "whether you'd like the {plant} in 2L or 3L? We have good stock "
            "of both.",
            "We're putting together next month's availability list. Is there "
            "anything you'd like us to hold back for you?",
        ],
        "open": ["Could I place an order for the {job} job?",
                 "Another order for you, I'm afraid!",
                 "Could you add a few extra {plant} to the last order?",
                 "R:2L please — they'll establish faster.",
                 "R:Ooh, yes — hold back the {plant} for me, please."],
        "middle": [
            "{order_list}",
            "Delivery to the yard on {day} would be ideal.",
            "If the {plant} aren't looking their best, swap for {plant2}. I "
            "trust your eye.",
            "Same account as usual, please.",
            "Could you hold them in the shade until we collect?",
            "Please hold back any {plant3} you have — I'll take the lot.",
            "The {job} client is very keen on bees, so anything "
            "pollinator-friendly is a win.",
            "We're planting the following week, so no great hurry.",
        ],
        "ask": ["Can you do {day}?", "Do you have them in stock?",
                "Could you send the invoice with the delivery?"],
    },
    "stone_quote": {
        "subjects": ["Quote for {material}", "Stone for the {job} job",
                     "Prices for {material}"],
        "incoming": [
            "Thanks for your enquiry. Could you let me know the approximate "
            "area and whether you need the stone cut to size or in random "
            "lengths?",
            "Further to your call, I've attached our current price list. "
            "Delivery is charged separately depending on the postcode.",
        ],
        "open": ["Could you quote me for {qty} square metres of {material}?",
                 "R:It's about {qty} square metres in total.",
                 "R:Thanks for the price list!"],
        "middle": [
            "Random lengths are fine — the client loves the rustic look.",
            "Could you send a sample first? The last batch was a touch too "
            "yellow.",
            "Access is narrow, so a smaller lorry if possible.",
            "Bulk bags are fine. We'll barrow from the drive.",
            "We'd want it on site by {day}.",
            "I'll need about {qty2} bags of {material2} too.",
            "Is the delivery charge the same as last time?",
        ],
        "ask": ["What sort of lead time are you looking at?",
                "Could you pop a quote over?", "Do you have it in stock?"],
    },
    "stone_order": {
        "subjects": ["Order — {material} for {job}", "Go ahead for {job}",
                     "Confirming the {material}"],
        "incoming": [
            "Please find our quotation attached. Prices are held for 30 days. "
            "Let me know if you would like to proceed and we will book a "
            "delivery slot.",
            "The samples have gone out in today's post. You should have them "
            "by {day}.",
        ],
        "open": ["Let's go ahead with the {material}, please.",
                 "Happy with the quote — let's get it ordered.",
                 "Confirming the order for the {job} job.",
                 "R:Samples arrived. Gorgeous!"],
        "middle": [
            "Please deliver to {job}, not the yard.",
            "Someone will be on site from eight.",
            "The driveway is gravel — can the lorry cope?",
            "PO reference is the client name, as usual.",
            "The warmer colour is spot on. Much better than last time.",
            "Could you add {qty2} bags of pointing sand?",
            "We're laying it the week after, so a little flexibility is fine.",
        ],
        "ask": ["When's the earliest you can deliver?",
                "Can you confirm the total?", "Shall I pay upfront this time?"],
    },
    "delivery": {
        "subjects": ["Delivery on {day}", "Delivery to {job}",
                     "Change of delivery date"],
        "incoming": [
            "We have you booked in for delivery on {day} between 8am and "
            "12pm. Please confirm someone will be on site to receive it.",
            "Unfortunately our lorry is out of action this week. Would {day2} "
            "work instead for your delivery?",
        ],
        "open": ["R:{day} is perfect — thank you.",
                 "R:Ah, no worries at all. {day2} works.",
                 "R:Yes — someone will be there from eight.",
                 "N:Could we book a delivery to {job} on {day}?",
                 "N:Can we move the {job} delivery to {day2}?"],
        "middle": [
            "Please ring me when you're twenty minutes out.",
            "Access is through the side gate. It's 90cm wide.",
            "The client's away, so I'll meet the driver myself.",
            "Could the driver leave it on the drive, not the road?",
            "If it's raining we'll still take it. Mud is part of the job!",
            "No rush at all — the site isn't ready yet anyway.",
        ],
        "ask": ["Will you need anything signed?", "What time roughly?",
                "Can the driver use a pallet truck?"],
    },
    "works": {
        "subjects": ["Groundworks at {job}", "Mini digger for {day}",
                     "Start date for {job}", "Digger hire",
                     "Levels at {job}"],
        "incoming": [
            "We can start at {job} on {day} if that still suits. I'll have "
            "two lads with me and the small digger.",
            "The mini digger is available from {day}. Do you need the "
            "tracked one or the wheeled one? We also have a dumper if "
            "needed.",
        ],
        "open": ["{day} is brilliant — let's get our hands dirty!",
                 "Could we book the mini digger from {day} for three days?",
                 "R:Perfect, thanks {first}.",
                 "R:Tracked, please — the lawn's soft."],
        "middle": [
            "Access is through the side gate — 90cm, so the small one.",
            "Can your lads start on the levels first?",
            "The skip's booked for {day2}.",
            "There's a drain running under {place}. Mind it!",
            "I'll be on site from half seven with the plans.",
            "We'll need the dumper too, please.",
            "The neighbours have been warned about the noise. Mostly.",
            "Let's get the hard landscaping finished before we plant "
            "anything.",
        ],
        "ask": ["Can you do {day}?", "How many days do you think?",
                "Is the dumper free the same week?"],
    },
    "accounts": {
        "subjects": ["Receipts for {quarter}", "VAT question",
                     "Mileage for {quarter}", "Year-end bits",
                     "Quick accounts question"],
        "incoming": [
            "Just a reminder that I'll need your receipts and mileage for "
            "{quarter} by the end of the month so I can get the return done.",
            "I've been through the spreadsheet and there are a few "
            "transactions I can't match. Could you have a look at the list "
            "below?\n\n14/03 Card payment 86.40\n22/03 Transfer 410.00\n"
            "29/03 Cash 120.00",
        ],
        "open": ["Receipts for {quarter} are in the shared folder.",
                 "Quick thought: can I claim the new greenhouse?",
                 "Sorry — late again with the paperwork!",
                 "All done, I think!"],
        "middle": [
            "Mileage is {miles} miles for the quarter.",
            "I've finally sorted the spreadsheet. Mostly.",
            "The van insurance went up, so that's in there too.",
            "There's one nursery invoice I can't find. I'm digging for it.",
            "The cash payment was for topsoil — I've scanned the note.",
            "I've bought a new pair of Felco secateurs. Surely that counts "
            "as tools?",
            "The studio rent is on a standing order now, so it should be "
            "easier to match.",
        ],
        "ask": ["Does that cover everything?",
                "Is there anything else you need from me?",
                "Can we have a quick call before the deadline?"],
    },
    "friend": {
        "subjects": ["{day}?", "Plant swap!", "Dinner next week",
                     "That book", "Long time!", "Walk on {day}?",
                     "Birthday drinks"],
        "incoming": [
            "Are we still on for {day}? I can bring wine and the dog, in that "
            "order.",
            "It has been ages. Fancy a walk and a pub lunch one weekend?",
            "I finally have a garden of my own. Well, a balcony. What should "
            "I grow?",
        ],
        "open": ["It's been far too long!", "Are you free on {day}?",
                 "Plant swap at mine on {day} — you in?", "R:Yes yes yes!",
                 "R:Ha — of course!"],
        "middle": [
            "I'll make the lemon drizzle.",
            "I've got far too many {plant} seedlings. Please take some!",
            "Work is mad, in the best way.",
            "The allotment is a jungle. A glorious jungle.",
            "Bring the dog!",
            "I finished the book. Cried at the end — don't tell anyone.",
            "Pub after? The Fox does a brilliant roast.",
            "I'll send you a balcony planting list — {plant2} and herbs to "
            "start.",
            "Tell me everything about the new job.",
            "Your balcony is going to be gorgeous. Pots, pots, pots.",
        ],
        "ask": ["Are you around?", "What are you up to on {day}?",
                "Shall I bring anything?", "Shall we say twelve?"],
    },
    "family": {
        "subjects": ["Sunday lunch", "Your roses", "Christmas plans",
                     "Birthday!", "Dad's bench", "Easter weekend"],
        "incoming": [
            "Are you coming for lunch on Sunday? Your father wants to show "
            "you the new greenhouse.",
            "The roses are covered in black spot again. What should I do with "
            "them?",
            "Have you thought about Christmas yet? Your brother says he will "
            "come on the 23rd.",
        ],
        "open": ["N:Sunday lunch still on?",
                 "R:Yes please — I'll be there by one.",
                 "R:Oh no, the roses!", "R:Christmas — already?!",
                 "N:Quick one — are you both in on Saturday?"],
        "middle": [
            "I'll bring the pudding.",
            "Your roses want a hard prune in February. Leave it to me.",
            "Don't let Dad near the hedge trimmer again!",
            "Pick off the spotty leaves and bin them — not the compost.",
            "I can come on the 23rd too.",
            "I've found the perfect bench for Dad's corner.",
            "Tell Rob he owes me a pint.",
            "Can I bring some cuttings for the greenhouse?",
            "I'll be filthy — straight from site.",
        ],
        "ask": ["Shall I bring anything?", "What time do you want me?",
                "Is Dad behaving?", "Shall I stay over?"],
    },
    "christmas": {
        "subjects": ["Christmas"],
        "incoming": [
            "Have you thought about Christmas yet? Your brother says he will "
            "come on the 23rd. I would love to have everyone here this year "
            "if you can manage it.",
            "Wonderful. Rob and Amy will arrive on the 23rd too. Could you "
            "bring something green for the table? Your father has promised "
            "not to buy another plastic wreath.",
            "One more thing. Your father wants to know whether you will help "
            "him plant the apple tree on Boxing Day. I told him you would be "
            "on holiday, but he insists.",
        ],
        "open": ["R:Christmas — already?! Yes, count me in.",
                 "R:Ha — of course I'll bring some greenery.",
                 "R:Tell Dad yes — of course I'll help with the apple tree."],
        "middle": [
            "I can come on the 23rd and stay till the 27th.",
            "I'll bring the pudding. And the good crackers.",
            "I've got holly and ivy from the Ashcombe job — perfectly legal, "
            "I promise.",
            "A wreath of eucalyptus and rosehips would look lovely on the "
            "door.",
            "Don't let Dad near the hedge trimmer again!",
            "Boxing Day planting is a family tradition now, apparently.",
            "Bare-root is the way — I'll pick a nice Cox from Greenleaf.",
            "We'll need a spade, a stake and a lot of tea.",
            "Tell Rob he owes me a pint.",
        ],
        "ask": ["Shall I bring anything else?", "What time do you want me?",
                "Is Dad behaving?", "Shall I stay over?"],
    },
    "decline": {
        "subjects": ["Article for the {month_next} issue",
                     "Speaking at {event}", "Judging at {event}"],
        "incoming": [
            "We are putting together a feature on small-garden design for "
            "the {month_next} issue and would love a 1,500-word piece from "
            "you. The deadline would be the end of next month.",
            "We would be delighted if you would join us as a speaker at "
            "{event}. The session would be 45 minutes with time for "
            "questions.",
            "Would you consider judging the small gardens category at {event} "
            "this year? It would involve one afternoon in {month_next}.",
        ],
        "open": ["R:Thank you so much for thinking of me.",
                 "R:I'm really flattered to be asked.",
                 "R:What a lovely invitation."],
        "middle": [
            "Sadly I'm going to have to say no this time.",
            "The diary's bursting at the seams until {month_next}.",
            "I'd rather say no than do it badly.",
            "I know {referral} would do a brilliant job, though.",
            "Do ask again next year. I'd love to say yes then.",
            "It's planting season, and the plants won't wait for me.",
            "It's a small studio — just me and a very patient van.",
        ],
        "ask": ["Shall I put you in touch with {referral}?",
                "Would next year work?",
                "Could we keep in touch for the spring issue?"],
    },
    "allotment": {
        "subjects": ["Plot 14", "Work party on {day}", "Water troughs",
                     "Seed swap"],
        "incoming": [
            "The committee is organising a work party on {day} to clear the "
            "overgrown plots by the gate. Would you be able to help for a "
            "couple of hours?",
            "Just a reminder that allotment fees are due by the end of the "
            "month.",
        ],
        "open": ["R:Count me in for {day}!",
                 "R:I can do a couple of hours on {day}.",
                 "R:Fees paid — sorry for the delay!",
                 "N:Quick thought for the committee."],
        "middle": [
            "I'll bring the brushcutter and some bin bags.",
            "The trough by plot 14 is leaking again.",
            "I've got spare {plant} seedlings for the seed swap.",
            "Could we get another load of woodchip for the paths?",
            "Let's get our hands dirty!",
            "My broad beans are finally up. Small victories.",
        ],
        "ask": ["What time are we starting?",
                "Do we need to bring our own tools?",
                "Is the shed key still under the pot?"],
    },
}

# Threads: same References root, several of Dana's replies in a row.
# (contact, subject, stages, quote style, first day or None); a stage is
# (topic, index of the other party's message or None, index of Dana's opener
# among the reply openers or None).
DANA_THREADS = [
    ("Sam Ortiz", "Back garden redesign at Elm Road",
     [("proposal", 0, None), ("revision", 0, None), ("site_visit", 3, None),
      ("invoice", 1, 1)], "gmail", None),
    ("Kate Doyle", "Yorkstone for the Brook End job",
     [("stone_quote", 0, 1), ("stone_order", 0, 1), ("delivery", 0, 2)],
     "outlook", None),
    ("Tom Hargreaves", "Walled garden planting plan",
     [("proposal", 1, None), ("advice", 2, None), ("progress", 1, 1),
      ("thanks", 0, 1)], "original", None),
    ("Margaret Whitfield", "Christmas",
     [("christmas", 0, 0), ("christmas", 1, 1), ("christmas", 2, 2)],
     "apple", datetime(2025, 11, 24)),
    ("Fiona MacLeod", "Meadow at Glenview",
     [("site_visit", 2, None), ("proposal", 2, None), ("followup", 0, None),
      ("progress", 0, None)], "gmail", None),
]

# Fixed messages with planted PII: (contact, topic, sentence).
DANA_PII = [
    ("Mike Dunn", "works",
     "If I'm not answering, Tom's mobile is {phone_international} — he'll "
     "let you in."),
    ("James Okafor", "collab",
     "The surveyor is Gemma Ellery — {email}. She's lovely, and very quick."),
    ("Margaret Whitfield", "family",
     "Rob's new number is {phone_national}, by the way. He keeps forgetting "
     "to tell you!"),
]

# --------------------------------------------------------------------------
# Marcus's world
# --------------------------------------------------------------------------

MARCUS_CONTACTS = [
    Person("Daniel Reyes", "daniel.reyes@summitfreight.example", "Daniel",
           "carrier", "Daniel Reyes", "Summit Freight", weight=5),
    Person("Angela Foster", "afoster@brightline-retail.example", "Angela",
           "client", "Angela Foster", "Brightline Retail", weight=5),
    Person("Kevin O'Brien", "kobrien@northgate-logistics.example", "Kevin",
           "internal", "Kevin", weight=5),
    Person("Linda Chen", "linda.chen@northgate-logistics.example", "Linda",
           "internal", "Linda", weight=3),
    Person("Robert Vance", "rvance@northgate-logistics.example", "Robert",
           "internal", "Rob", weight=4),
    Person("Sandra Mills", "smills@apexpackaging.example", "Sandra",
           "vendor", "Sandra Mills", "Apex Packaging", weight=3),
    Person("Thomas Greene", "tgreene@greene-safety.example", "Thomas",
           "vendor", "Tom Greene", "Greene Safety Consulting", weight=3),
    Person("Patricia Nguyen", "pnguyen@brightline-retail.example", "Patricia",
           "client", "Patricia", "Brightline Retail", weight=3),
    Person("Greg Holloway", "gholloway@midwest-racking.example", "Greg",
           "vendor", "Greg", "Midwest Racking Systems", weight=2),
    Person("Maria Alvarez", "malvarez@northgate-logistics.example", "Maria",
           "internal", "Maria", weight=3),
    Person("Steven Park", "spark@harborview-distribution.example", "Steven",
           "client", "Steve Park", "Harborview Distribution", weight=3),
    Person("Jennifer Walsh", "jwalsh@clearpath-software.example", "Jennifer",
           "vendor", "Jennifer Walsh", "ClearPath Software", weight=3),
    Person("Brian Cooper", "bcooper@northgate-logistics.example", "Brian",
           "internal", "Brian", weight=3),
    Person("Rachel Dunn", "rdunn@keystone-insurance.example", "Rachel",
           "vendor", "Rachel Dunn", "Keystone Insurance", weight=2),
    Person("Victor Hale", "vhale@ironbridge-properties.example", "Victor",
           "vendor", "Victor Hale", "Ironbridge Properties", weight=2),
]

SITES = ["the Joliet facility", "the Elk Grove distribution center",
         "the Gary cross-dock", "Warehouse 3", "the Aurora fulfillment center"]
CARRIERS = ["Summit Freight", "Lakeshore Carriers", "Prairie Line Transport",
            "Great Lakes Express"]

MARCUS_TOPICS = {
    "shipment": {
        "subjects": ["Revised Shipment Schedule for {ref}",
                     "Update Regarding Outbound Shipments - Week {week}",
                     "Delivery Window Adjustment for {site_title}"],
        "incoming": "Could you confirm the revised pickup times for next "
                    "week? We need to update our dock schedule by {weekday}.",
        "intro": [
            "I am writing to inform you of several changes to the outbound "
            "shipment schedule for {ref}.",
            "As discussed during our call on {weekday}, we have reviewed the "
            "delivery windows for {site} and identified a number of "
            "adjustments.",
            "Further to my previous correspondence, I would like to provide "
            "an update on the status of the shipments scheduled for week "
            "{week}.",
        ],
        "list_intro": "Please note the following changes, effective "
                      "{deadline}:",
        "items": [
            "Pickup times at {site} will move from 7:00 AM to 9:30 AM.",
            "{carrier} will handle all LTL shipments originating from the "
            "north docks.",
            "Orders received after 2:00 PM will be processed on the following "
            "business day.",
            "Trailer drop-offs must be scheduled at least 48 hours in "
            "advance.",
            "Shipments exceeding {qty} pallets will require a dedicated "
            "appointment.",
            "The Saturday receiving window will be discontinued until further "
            "notice.",
            "All bills of lading must reference the purchase order number.",
            "Expedited requests should be routed through the transportation "
            "desk rather than the warehouse floor.",
        ],
    },
    "contract": {
        "subjects": ["Contract Renewal - {org}",
                     "Proposed Amendments to Master Services Agreement",
                     "Renewal Terms for {year}"],
        "incoming": "Attached is our proposed renewal for the coming year. "
                    "Please review and let us know if you have any questions "
                    "about the revised pricing.",
        "intro": [
            "Thank you for forwarding the proposed renewal terms. I have "
            "reviewed the document in detail with our finance team.",
            "Please find attached {doc} for your review prior to our "
            "scheduled discussion.",
            "As our current agreement is due to expire on {deadline}, I "
            "would like to begin the renewal process at your earliest "
            "convenience.",
        ],
        "list_intro": "Before we can proceed, we would like to address the "
                      "following points:",
        "items": [
            "The proposed rate increase of {pct_small} exceeds the threshold "
            "approved in our annual budget.",
            "Section 4.2 should be amended to include a 30-day termination "
            "clause for either party.",
            "We request that fuel surcharges be capped at the current "
            "quarterly average.",
            "Payment terms should remain at net 45 rather than the proposed "
            "net 30.",
            "The service level agreement should specify an on-time target of "
            "at least 97 percent.",
            "We would like clarification regarding liability for damaged "
            "goods in transit.",
            "Any changes to insurance requirements must be documented in "
            "writing.",
        ],
    },
    "audit": {
        "subjects": ["Warehouse Audit Findings - {site_title}",
                     "Follow-Up on Cycle Count Discrepancies",
                     "Results of the {quarter} Compliance Audit"],
        "incoming": "Can you send over the findings from last week's audit? "
                    "I would like to review them before the leadership "
                    "meeting.",
        "intro": [
            "I have completed my review of the audit conducted at {site} "
            "during the week of {date_long}.",
            "Please find attached {doc}, which summarizes the findings from "
            "the recent inspection.",
            "Following the cycle count performed on {weekday}, I would like "
            "to bring several discrepancies to your attention.",
        ],
        "list_intro": "The key findings are as follows:",
        "items": [
            "Inventory accuracy at {site} was measured at {pct_accuracy}, below "
            "target of 99.5 percent.",
            "{qty} locations contained product that did not match the system "
            "record.",
            "Several pallets in aisle 14 were stored without proper labeling.",
            "Fire extinguisher inspections were not documented for the month "
            "of {month}.",
            "The returns area requires additional organization to prevent "
            "mixing of damaged and saleable stock.",
            "Two forklifts were found to be overdue for scheduled "
            "maintenance.",
            "Receiving logs were incomplete for three of the five days "
            "reviewed.",
        ],
    },
    "staffing": {
        "subjects": ["Shift Coverage for {month}",
                     "Overtime Authorization Request",
                     "Temporary Staffing for Peak Season"],
        "incoming": "We are short-staffed on second shift again this week. "
                    "Can we get approval for overtime or temporary help?",
        "intro": [
            "I am writing to request authorization for additional overtime "
            "hours at {site} for the month of {month}.",
            "In anticipation of increased volume during peak season, I have "
            "prepared a staffing plan for your consideration.",
            "Thank you for raising the coverage issue on second shift. I have "
            "reviewed the schedule with the shift supervisors.",
        ],
        "list_intro": "The proposed plan includes the following measures:",
        "items": [
            "Authorize up to {hours} hours of overtime per week across all "
            "shifts.",
            "Engage {headcount} temporary associates through our staffing "
            "partner.",
            "Cross-train receiving personnel to support outbound operations "
            "during peak periods.",
            "Adjust break schedules to maintain continuous dock coverage.",
            "Defer non-essential projects until volume returns to normal "
            "levels.",
            "Review attendance data weekly to identify emerging gaps.",
        ],
    },
    "invoice": {
        "subjects": ["Invoice Discrepancy - {inv}",
                     "Billing Inquiry Regarding {ref}",
                     "Outstanding Balance on Account"],
        "incoming": "Our records show invoice {inv} as past due. Could you "
                    "please confirm the status of this payment?",
        "intro": [
            "Thank you for bringing this matter to my attention. I have "
            "reviewed invoice {inv} against our receiving records.",
            "I am writing regarding a discrepancy identified in invoice {inv} "
            "dated {date_long}.",
            "Our finance team has flagged several line items on the most "
            "recent statement that require clarification.",
        ],
        "list_intro": "Specifically, we have identified the following "
                      "issues:",
        "items": [
            "The invoice reflects {qty} units, whereas our records indicate "
            "that a lower quantity was received.",
            "Accessorial charges totaling {amount} were not authorized in "
            "advance.",
            "The applied rate does not match the rate schedule in effect at "
            "the time of shipment.",
            "Detention fees were charged for a delivery that arrived within "
            "the agreed window.",
            "The purchase order number referenced on the invoice is "
            "incorrect.",
            "A credit memo for the damaged shipment in {month} has not yet "
            "been applied.",
        ],
    },
    "meeting": {
        "subjects": ["Request for Meeting: {quarter} Business Review",
                     "Scheduling the {quarter} Operations Review",
                     "Agenda for {weekday} Meeting"],
        "incoming": "Would you be available to meet next week to review "
                    "performance for the quarter? Please let me know a few "
                    "times that work for you.",
        "intro": [
            "I would like to schedule our {quarter} business review at a time "
            "that is convenient for you and your team.",
            "Thank you for your flexibility in rescheduling our meeting. I "
            "have prepared a draft agenda for your review.",
            "In preparation for the quarterly review, I have compiled the "
            "relevant performance data for both facilities.",
        ],
        "list_intro": "I propose that we cover the following items:",
        "items": [
            "Review of on-time delivery performance for the quarter.",
            "Discussion of inventory accuracy and shrinkage trends.",
            "Update on the warehouse management system upgrade.",
            "Forecast of volume for the upcoming quarter.",
            "Open action items from the previous review.",
            "Opportunities for cost reduction in transportation.",
            "Any other business.",
        ],
    },
    "safety": {
        "subjects": ["Mandatory Safety Training - {site_title}",
                     "Forklift Certification Compliance",
                     "Incident Report Follow-Up"],
        "incoming": "Are the updated forklift certifications on track for "
                    "the end of the month? The insurer has asked for "
                    "confirmation.",
        "intro": [
            "I am writing to remind all supervisors that the annual safety "
            "training must be completed by {deadline}.",
            "Following the incident reported on {weekday}, I would like to "
            "outline the corrective actions we are implementing.",
            "As part of our ongoing commitment to workplace safety, we will "
            "be conducting a review of forklift certifications at {site}.",
        ],
        "list_intro": "Please ensure that the following steps are "
                      "completed:",
        "items": [
            "All forklift operators must present a current certification "
            "card.",
            "Supervisors should submit attendance records within two business "
            "days.",
            "Personal protective equipment must be worn in all designated "
            "areas.",
            "Near-miss incidents must be reported through the online portal.",
            "Pedestrian walkways must be kept clear at all times.",
            "Damaged racking should be tagged and reported immediately.",
        ],
    },
    "inventory": {
        "subjects": ["Inventory Reconciliation for {quarter}",
                     "Stock Level Report - {site_title}",
                     "Physical Inventory Count Schedule"],
        "incoming": "When is the physical inventory count scheduled this "
                    "year? We need to plan around it for our promotions.",
        "intro": [
            "Please find attached {doc} for the {quarter} inventory "
            "reconciliation.",
            "I am writing to confirm the schedule for the annual physical "
            "inventory count at {site}.",
            "Our recent analysis of stock levels has identified several "
            "items that warrant further review.",
        ],
        "list_intro": "Please note the following details:",
        "items": [
            "The count will begin at 6:00 AM on {deadline}.",
            "Receiving will be suspended for the duration of the count.",
            "Slow-moving inventory valued at {amount} has been identified for "
            "review.",
            "{qty} SKUs are currently below their reorder point.",
            "Variance above 2 percent will require a recount and supervisor "
            "approval.",
            "Final results will be shared within five business days.",
        ],
    },
    "kpi": {
        "subjects": ["Carrier Performance Metrics - {month}",
                     "On-Time Delivery Report",
                     "Monthly Operations Dashboard"],
        "incoming": "Could you share the carrier scorecard for last month? "
                    "We are seeing more late deliveries on our side.",
        "intro": [
            "Please find attached {doc} for the month of {month}.",
            "I have reviewed the carrier performance data for {month} and "
            "would like to share a summary of the results.",
            "In response to your inquiry regarding late deliveries, I have "
            "analyzed the carrier data for the past thirty days.",
        ],
        "list_intro": "The principal observations are as follows:",
        "items": [
            "On-time delivery for {carrier} was {pct_ontime}, compared with a target "
            "of 96 percent.",
            "Average dwell time at {site} increased to {hours} minutes.",
            "Damage claims decreased by {pct_small} relative to the prior month.",
            "Tender acceptance remained stable across all primary carriers.",
            "Late deliveries were concentrated on Monday mornings.",
            "We recommend a formal performance review with the two "
            "lowest-ranked carriers.",
        ],
    },
    "policy": {
        "subjects": ["Update to Dock Scheduling Procedures",
                     "Revised Receiving Policy",
                     "Changes to Overtime Approval Process"],
        "incoming": "Is there a written version of the new dock scheduling "
                    "procedure? Some of the drivers have been asking.",
        "intro": [
            "I am writing to inform you of changes to our dock scheduling "
            "procedures, which will take effect on {deadline}.",
            "Please find attached {doc}, which reflects the revised receiving "
            "policy.",
            "In order to improve consistency across facilities, we have "
            "updated the overtime approval process.",
        ],
        "list_intro": "The key changes are summarized below:",
        "items": [
            "All appointments must be booked through the online portal.",
            "Carriers arriving more than 30 minutes late will be rescheduled.",
            "Overtime requests must be approved by the shift manager in "
            "advance.",
            "Receiving discrepancies must be documented before the driver "
            "departs.",
            "The policy applies to all facilities, including {site}.",
            "Questions should be directed to the operations team.",
        ],
    },
    "wms": {
        "subjects": ["System Maintenance Window",
                     "Implementation Timeline for WMS Upgrade",
                     "User Acceptance Testing Schedule"],
        "incoming": "We would like to confirm the go-live date for the WMS "
                    "upgrade. Is the team still targeting the original "
                    "schedule?",
        "intro": [
            "Thank you for the updated project plan. I have reviewed the "
            "proposed implementation timeline with our IT department.",
            "I am writing to confirm the maintenance window for the warehouse "
            "management system scheduled for {deadline}.",
            "As we approach the go-live date, I would like to summarize the "
            "outstanding items that must be completed.",
        ],
        "list_intro": "Please review the following items:",
        "items": [
            "User acceptance testing must be completed by {deadline}.",
            "Label printer configuration remains outstanding at {site}.",
            "Training sessions for supervisors should be scheduled in "
            "advance of go-live.",
            "A rollback plan should be documented and approved.",
            "Integration with the carrier portal requires additional "
            "testing.",
            "Support staff should be available on site during the first week.",
        ],
    },
    "facility": {
        "subjects": ["Facility Maintenance Request - {site_title}",
                     "Lease Renewal Discussion",
                     "Dock Door Repairs"],
        "incoming": "Following your maintenance request, we can send a "
                    "contractor on {weekday}. Please confirm access "
                    "arrangements.",
        "intro": [
            "I am writing to request maintenance for several items at {site}.",
            "Thank you for your prompt response to our maintenance request. "
            "I would like to confirm the arrangements for the contractor "
            "visit.",
            "As our lease is scheduled for renewal in {month}, I would like "
            "to discuss several matters in advance.",
        ],
        "list_intro": "The items requiring attention are:",
        "items": [
            "Dock doors 4 and 7 are not closing properly.",
            "Lighting in the north aisle requires repair.",
            "The roof leak above the returns area has recurred.",
            "Parking lot striping should be refreshed before winter.",
            "HVAC servicing is overdue for the office area.",
            "The contractor should check in with security upon arrival.",
        ],
    },
}

MARCUS_CONTACT_TOPICS = {
    "Daniel Reyes": ["shipment", "contract", "invoice", "kpi"],
    "Angela Foster": ["shipment", "meeting", "kpi", "inventory"],
    "Kevin O'Brien": ["staffing", "audit", "safety", "inventory", "policy"],
    "Linda Chen": ["staffing", "safety", "policy"],
    "Robert Vance": ["meeting", "kpi", "staffing", "audit", "contract"],
    "Sandra Mills": ["contract", "invoice", "inventory"],
    "Thomas Greene": ["safety", "audit", "meeting"],
    "Patricia Nguyen": ["invoice", "contract", "meeting", "shipment"],
    "Greg Holloway": ["facility", "invoice", "safety"],
    "Maria Alvarez": ["invoice", "inventory", "contract"],
    "Steven Park": ["shipment", "policy", "meeting"],
    "Jennifer Walsh": ["wms", "invoice", "meeting"],
    "Brian Cooper": ["shipment", "kpi", "policy"],
    "Rachel Dunn": ["contract", "safety"],
    "Victor Hale": ["facility", "contract"],
}

MARCUS_DOCS = {
    "shipment": ["the revised shipment schedule", "the updated routing guide"],
    "contract": ["the revised rate schedule", "the signed amendment",
                 "our proposed redline of the agreement"],
    "audit": ["the audit summary", "the cycle count report"],
    "staffing": ["the proposed staffing plan", "the overtime summary"],
    "invoice": ["the reconciliation workbook", "the relevant receiving records"],
    "meeting": ["the draft agenda", "the quarterly performance summary"],
    "safety": ["the training schedule", "the incident report"],
    "inventory": ["the reconciliation workbook", "the count instructions"],
    "kpi": ["the weekly KPI report", "the carrier scorecard"],
    "policy": ["the updated standard operating procedure",
               "the revised policy document"],
    "wms": ["the implementation checklist", "the testing schedule"],
    "facility": ["the maintenance log",
                 "photographs of the affected areas"],
}

MARCUS_THREADS = [
    ("Angela Foster", "Q3 Business Review", ["meeting", "kpi", "meeting"],
     "outlook"),
    ("Daniel Reyes", "Rate Agreement Renewal",
     ["contract", "invoice", "contract"], "original"),
]

MARCUS_OPENERS = ["I trust this finds you well.", "I trust this finds you well.",
                  "I trust this finds you well.",
                  "I hope this message finds you well."]
MARCUS_REPLY_OPENERS = [
    "Thank you for your email.", "Thank you for your prompt response.",
    "Thank you for reaching out regarding this matter.",
    "I appreciate you following up on this.",
]
MARCUS_CLOSINGS = [
    "Please do not hesitate to contact me should you require any further "
    "information.",
    "I would appreciate your confirmation at your earliest convenience.",
    "Thank you in advance for your cooperation in this matter.",
    "I look forward to your response.",
    "Please let me know if you have any questions or concerns.",
    "I would be happy to discuss this further at your convenience.",
]
MARCUS_EXTRA = [
    "Please find attached {doc} for your reference.",
    "I have copied {colleague} on this message for visibility.",
    "I would appreciate it if you could review this information prior to "
    "{deadline}.",
    "We remain committed to maintaining the highest standards of service.",
    "Should any of these items require further discussion, I would be glad "
    "to arrange a call.",
    "I will circulate meeting notes following our discussion.",
    "This information has also been shared with the regional leadership "
    "team.",
]
MARCUS_SHORT = [
    "Thank you for the update. I have noted the revised figures and will "
    "incorporate them into the weekly report.",
    "I confirm receipt of your message. I will review the attached document "
    "and respond by {deadline}.",
    "Thank you for your patience while we looked into this matter. The issue "
    "has been resolved, and the corrected records have been uploaded to the "
    "shared folder.",
    "Please accept my apologies for the delayed response. I will provide a "
    "complete update by the end of the week.",
]

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

WORD_RE = re.compile(r"[a-z0-9']+")


def words(text: str) -> set:
    return set(WORD_RE.findall(text.lower()))


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _last_sunday(year: int, month: int) -> datetime:
    d = datetime(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    while d.weekday() != 6:
        d -= timedelta(days=1)
    return d


def _nth_sunday(year: int, month: int, n: int) -> datetime:
    d = datetime(year, month, 1)
    while d.weekday() != 6:
        d += timedelta(days=1)
    return d + timedelta(days=7 * (n - 1))


def london(naive: datetime) -> datetime:
    """Attach Europe/London's offset (GMT/BST) to a local wall time."""
    start = _last_sunday(naive.year, 3).replace(hour=1)
    end = _last_sunday(naive.year, 10).replace(hour=1)
    hours = 1 if start <= naive < end else 0
    return naive.replace(tzinfo=timezone(timedelta(hours=hours)))


def chicago(naive: datetime) -> datetime:
    """Attach America/Chicago's offset (CST/CDT) to a local wall time."""
    start = _nth_sunday(naive.year, 3, 2).replace(hour=2)
    end = _nth_sunday(naive.year, 11, 1).replace(hour=2)
    hours = -5 if start <= naive < end else -6
    return naive.replace(tzinfo=timezone(timedelta(hours=hours)))


def in_holiday(naive: datetime) -> bool:
    return any(a <= naive < b for a, b, _ in HOLIDAYS)


def gmail_attr(dt: datetime, who: Person) -> str:
    return (f"On {DAY_NAMES[dt.weekday()][:3]}, {dt.day} "
            f"{MONTH_NAMES[dt.month - 1][:3]} {dt.year} at {dt:%H:%M}, "
            f"{who.name} <{who.email}> wrote:")


def apple_attr(dt: datetime, who: Person) -> str:
    return (f"On {dt.day} {MONTH_NAMES[dt.month - 1][:3]} {dt.year}, at "
            f"{dt:%H:%M}, {who.name} <{who.email}> wrote:")


def us_gmail_attr(dt: datetime, who: Person) -> str:
    hour = dt.hour % 12 or 12
    ampm = "AM" if dt.hour < 12 else "PM"
    return (f"On {DAY_NAMES[dt.weekday()][:3]}, "
            f"{MONTH_NAMES[dt.month - 1][:3]} {dt.day}, {dt.year} at "
            f"{hour}:{dt:%M} {ampm} {who.name} <{who.email}> wrote:")


def uk_sent(dt: datetime) -> str:
    return (f"{DAY_NAMES[dt.weekday()]}, {dt.day} {MONTH_NAMES[dt.month - 1]} "
            f"{dt.year} {dt:%H:%M}")


def uk_sent_short(dt: datetime) -> str:
    return f"{dt.day:02d} {MONTH_NAMES[dt.month - 1]} {dt.year} {dt:%H:%M}"


def us_sent(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    ampm = "AM" if dt.hour < 12 else "PM"
    return (f"{DAY_NAMES[dt.weekday()]}, {MONTH_NAMES[dt.month - 1]} "
            f"{dt.day}, {dt.year} {hour}:{dt:%M} {ampm}")


def quote_lines(text: str, width: int = 72) -> str:
    """Gmail/Apple style '> ' quoting; wraps prose, keeps nested quotes."""
    out = []
    for line in text.split("\n"):
        if not line:
            out.append(">")
        elif line.startswith(">"):
            out.append(">" + line)
        elif len(line) > width:
            out.extend("> " + part for part in textwrap.wrap(
                line, width, break_long_words=False, break_on_hyphens=False))
        else:
            out.append("> " + line)
    return "\n".join(out)


def make_msgid(rng: random.Random, dt: datetime, domain: str) -> str:
    stamp = dt.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"<{stamp}.{rng.getrandbits(40):010x}@{domain}>"


def other_msgid(rng: random.Random, who: Person) -> str:
    token = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
                    for _ in range(16))
    return f"<{token}.{rng.randrange(10**5, 10**6)}@{who.domain}>"


def to_html(blocks: list, signature, attr, quoted) -> str:
    """A Gmail-like HTML twin of the plain text part."""
    esc = html.escape
    parts = ['<div dir="ltr">']
    for block in blocks:
        parts.append("<p>" + "<br>".join(esc(x) for x in block.split("\n"))
                     + "</p>")
    if signature:
        parts.append('<div class="gmail_signature">-- <br>'
                     + "<br>".join(esc(x) for x in signature.split("\n"))
                     + "</div>")
    parts.append("</div>")
    if quoted:
        parts.append('<br><div class="gmail_quote"><div dir="ltr" '
                     f'class="gmail_attr">{esc(attr)}<br></div>')
        parts.append('<blockquote class="gmail_quote" style="margin:0px 0px '
                     '0px 0.8ex;border-left:1px solid rgb(204,204,204);'
                     'padding-left:1ex">')
        for para in quoted.split("\n\n"):
            parts.append('<div dir="ltr">' + "<br>".join(
                esc(x) for x in para.split("\n")) + "</div><br>")
        parts.append("</blockquote></div>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def build_message(*, sender: Person, to: Person, subject: str,
                  date: datetime, msgid: str, text: str,
                  in_reply_to: str | None = None, references=None,
                  html_text: str | None = None, extra_headers=(),
                  boundary: str | None = None) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender.addr
    msg["To"] = to.addr
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = msgid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for key, value in extra_headers:
        msg[key] = value
    msg.set_content(text)
    if html_text is not None:
        msg.add_alternative(html_text, subtype="html")
        msg.set_boundary(boundary)
    utc = date.astimezone(timezone.utc)
    msg.set_unixfrom(f"From {sender.email} {time.asctime(utc.timetuple())}")
    for line in text.split("\n"):
        if line.startswith("From "):
            raise ValueError(f"body line would be mangled by mbox: {line!r}")
    return msg


def write_mbox(path: Path, messages: list) -> None:
    """Write all messages to ``path`` atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    box = mailbox.mbox(str(tmp), create=True)
    try:
        for msg in messages:
            box.add(msg)
        box.flush()
    finally:
        box.close()
    os.replace(tmp, path)


def openers(options: list, is_reply: bool) -> list:
    """Openers usable for a reply ("R:" marks reply-only, "N:" new-only)."""
    out = []
    for o in options:
        tag, _, rest = o.partition(":") if o[:2] in ("R:", "N:") else ("", "", o)
        if tag == "" or (tag == "R") == is_reply:
            out.append(rest)
    return out


def earlier_time(rng: random.Random, when: datetime, first_hour: int,
                 last_hour: int, max_days: int = 2) -> datetime:
    """A plausible waking-hours time, before ``when``, for the mail replied to."""
    for _ in range(50):
        day = when - timedelta(days=rng.randint(0, max_days))
        cand = day.replace(hour=rng.randrange(first_hour, last_hour),
                           minute=rng.randrange(60), second=rng.randrange(60))
        if timedelta(minutes=20) <= when - cand:
            return cand
    return when - timedelta(hours=3)


def between(rng: random.Random, lo: datetime, hi: datetime, first_hour: int,
            last_hour: int) -> datetime:
    """A waking-hours time strictly between two messages of a thread."""
    for _ in range(50):
        cand = lo + (hi - lo) * rng.uniform(0.2, 0.9)
        cand = cand.replace(hour=rng.randrange(first_hour, last_hour),
                            minute=rng.randrange(60), second=rng.randrange(60),
                            microsecond=0)
        if lo + timedelta(minutes=20) <= cand <= hi - timedelta(minutes=20):
            return cand
    return (lo + (hi - lo) / 2).replace(microsecond=0)


def sentence(text: str) -> str:
    """Capitalise a filled-in template ("lavender ..." -> "Lavender ...")."""
    return text[:1].upper() + text[1:] if text[:1].islower() else text


class Item(NamedTuple):
    when: datetime
    msg: EmailMessage


# --------------------------------------------------------------------------
# Dana
# --------------------------------------------------------------------------

class DanaWriter:
    HOUR_WEIGHTS = {6: 3, 7: 8, 8: 9, 9: 8, 10: 6, 11: 5, 12: 4, 13: 4, 14: 5,
                    15: 5, 16: 5, 17: 6, 18: 7, 19: 6, 20: 4, 21: 2}

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.accepted = []   # word sets of Dana's own text, for near-dups
        self.ids = set()
        self.stats = {"replies": 0, "quoted_replies": 0, "new": 0,
                      "html": 0, "signature": 0, "iphone": 0,
                      "pii_planted": 0, "threads": 0, "thread_messages": 0,
                      "received": 0, "auto_replies": 0}

    # -- dates -------------------------------------------------------------
    def random_time(self, day: datetime) -> datetime:
        rng = self.rng
        hours = list(self.HOUR_WEIGHTS)
        hour = rng.choices(hours, [self.HOUR_WEIGHTS[h] for h in hours])[0]
        return day.replace(hour=hour, minute=rng.randrange(60),
                           second=rng.randrange(60))

    def random_date(self, lo: datetime = START, hi: datetime = END):
        rng = self.rng
        span = (hi - lo).days
        while True:
            day = (lo + timedelta(days=rng.randrange(span + 1))).replace(
                hour=0, minute=0, second=0)
            if day.weekday() >= 5 and rng.random() > 0.35:
                continue
            naive = self.random_time(day)
            if lo <= naive <= hi and not in_holiday(naive):
                return london(naive)

    def msgid(self, dt: datetime) -> str:
        while True:
            mid = make_msgid(self.rng, dt, DANA.domain)
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    # -- content -----------------------------------------------------------
    def context(self, who: Person, when: datetime,
                job: str | None = None) -> dict:
        rng = self.rng
        plants = rng.sample(PLANTS, 3)
        places = rng.sample(PLACES, 2)
        materials = rng.sample(MATERIALS, 2)
        days = rng.sample(DAY_NAMES[:6], 2)
        clients = [p for p in DANA_CONTACTS if p.group == "client"]
        job = job or rng.choice(clients).short
        season = SEASONS[when.month]
        quarter_no = (when.month - 1) // 3 + 1
        order = rng.sample(PLANTS, rng.randint(2, 4))
        order_list = "\n".join(
            f"- {rng.choice([3, 5, 6, 9, 10, 12, 15, 20, 24, 30])} x {p} "
            f"({rng.choice(['9cm', '1L', '2L', '3L', '5L'])})" for p in order)
        ctx = {
            "first": who.first,
            "project": who.project or f"the {job} job",
            "short": who.short or job,
            "job": job,
            "plant": plants[0], "plant2": plants[1], "plant3": plants[2],
            "place": places[0], "place2": places[1],
            "material": materials[0], "material2": materials[1],
            "mulch": rng.choice(MULCHES),
            "day": days[0], "day2": days[1],
            "time": rng.choice(TIMES),
            "amount": f"£{rng.randrange(18, 260) * 50:,}",
            "inv": f"WC-{when.year}-{rng.randrange(1, 140):03d}",
            "qty": str(rng.choice([6, 8, 12, 15, 18, 24, 30, 40])),
            "qty2": str(rng.choice([4, 6, 10, 12, 20])),
            "month": MONTH_NAMES[when.month - 1],
            "month_next": MONTH_NAMES[when.month % 12],
            "season": season, "season_next": NEXT_SEASON[season],
            "thing": rng.choice(THINGS),
            "event": rng.choice(EVENTS),
            "referral": rng.choice(REFERRALS),
            "quarter": f"Q{quarter_no}",
            "miles": str(rng.randrange(380, 1900)),
            "order_list": order_list,
        }
        ctx["quick"] = rng.choice(QUICK_THOUGHTS).format_map(ctx)
        ctx.update(PLANTED_PII)
        return ctx

    def incoming_text(self, who: Person, topic: str, ctx: dict,
                      index: int | None = None) -> str:
        """What the other person wrote, in their own (neutral) style."""
        rng = self.rng
        options = DANA_TOPICS[topic]["incoming"]
        body = (options[index] if index is not None
                else rng.choice(options)).format_map(ctx)
        g = who.group
        if g == "family":
            if who.first == "Mum":
                return f"Hello love,\n\n{body}\n\nLove,\nMum"
            return f"D,\n\n{body}\n\nR"
        if g == "friend":
            hello = rng.choice(["Hey Dana", "Hi D,", "Dana,"])
            return f"{hello}\n\n{body}\n\n{who.sign}"
        if g in ("nursery", "stone", "trade"):
            if rng.random() < 0.5:
                return (f"Hi Dana\n\n{body}\n\nRegards\n{who.name}\n{who.org}")
            return f"Dana,\n\n{body}\n\n{who.sign}"
        if g in ("press", "community"):
            return (f"Dear Dana,\n\n{body}\n\nWith best wishes,\n{who.name}\n"
                    f"{who.org}")
        hello = rng.choice(["Hi Dana,", "Hello Dana,", "Hi Dana,"])
        bye = rng.choice(["Thanks,", "Best,", "Many thanks,", "Best wishes,"])
        tail = f"\n{who.org}" if who.org and rng.random() < 0.5 else ""
        return f"{hello}\n\n{body}\n\n{bye}\n{who.sign}{tail}"

    def paragraph_count(self) -> int:
        return self.rng.choices(
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            [9, 14, 19, 18, 14, 9, 6, 4, 2, 2, 1, 2])[0]

    def own_text(self, who: Person, topic: str, ctx: dict, when: datetime,
                 is_reply: bool, extra: str | None = None,
                 opener: int | None = None) -> list:
        """Dana's text above any quote, as blocks (paragraphs)."""
        rng = self.rng
        T = DANA_TOPICS[topic]
        fill = lambda s: sentence(s.format_map(ctx))  # noqa: E731
        n = self.paragraph_count()
        season = SEASONS[when.month]

        usable = openers(T["open"], is_reply)
        lead = fill(usable[opener] if opener is not None
                    else rng.choice(usable))
        if is_reply and rng.random() < 0.45:
            lead = rng.choice(REPLY_OPENERS) + " " + lead
        middles = [fill(s) for s in rng.sample(T["middle"], len(T["middle"]))]
        extras = []
        if rng.random() < 0.6:
            extras.append(fill(rng.choice(PET_PHRASES)))
        if rng.random() < 0.35:
            extras.append(rng.choice(METAPHORS))
        if rng.random() < 0.3:
            extras.append(rng.choice(WEATHER[season]))
        pool = middles[:]
        for e in extras:
            pool.insert(rng.randrange(len(pool) + 1), e)
        if extra:
            pool.insert(0, extra)
        ask = fill(rng.choice(T["ask"])) if rng.random() < 0.7 else None

        paras = []
        sentences = [lead] + pool
        budget = n - (1 if ask and n > 1 else 0)
        i = 0
        while len(paras) < budget and i < len(sentences):
            take = 2 if (rng.random() < 0.4 and i + 1 < len(sentences)
                         and "\n" not in sentences[i]
                         and "\n" not in sentences[i + 1]) else 1
            paras.append(" ".join(sentences[i:i + take]))
            i += take
        if extra and not any(extra in p for p in paras):
            paras.append(extra)
        if ask:
            if n == 1 and paras:
                paras[-1] = paras[-1] + " " + ask
            else:
                paras.append(ask)

        r = rng.random()
        if r < 0.06:
            greeting = None
        elif when.hour < 12 and r < 0.5:
            greeting = f"Morning {who.first} —"
        else:
            greeting = f"Hi {who.first}!"
        blocks = []
        if greeting:
            if n <= 2 and rng.random() < 0.3:
                paras[0] = f"{greeting} {paras[0]}"
            else:
                blocks.append(greeting)
        blocks.extend(paras)

        warm = who.group == "client" and rng.random() < 0.85
        word = "Warmly," if warm else "Cheers,"
        kiss = who.group in ("friend", "family") and rng.random() < 0.75
        r = rng.random()
        if r < 0.05:
            blocks.append("Dana x" if kiss else "D")
        else:
            blocks.append(f"{word}\nDana" + (" x" if kiss else ""))
        return blocks

    def choose_own(self, *args, threshold: float = 0.6, tries: int = 60,
                   **kwargs):
        """Draw Dana's text until it is not a near-duplicate of earlier mail."""
        best = None
        for _ in range(tries):
            blocks = self.own_text(*args, **kwargs)
            ws = words("\n\n".join(blocks))
            worst = max((jaccard(ws, o) for o in self.accepted), default=0.0)
            if best is None or worst < best[0]:
                best = (worst, blocks, ws)
            if worst < threshold:
                break
        self.accepted.append(best[2])
        return best[1]

    def compose(self, *, who: Person, topic: str, when: datetime,
                subject: str, ctx: dict, is_reply: bool, style: str = "none",
                incoming: tuple | None = None, references=(),
                html_part: bool = False, extra: str | None = None,
                opener: int | None = None):
        """Return (EmailMessage, full plain text)."""
        rng = self.rng
        blocks = self.choose_own(who, topic, ctx, when, is_reply, extra=extra,
                                 opener=opener)
        own = "\n\n".join(blocks)
        tail = ""
        signature = None
        r = rng.random()
        if r < 0.30:
            signature = DANA_SIGNATURE
            tail = "\n\n-- \n" + DANA_SIGNATURE
            self.stats["signature"] += 1
        elif r < 0.37 and not html_part:
            tail = "\n\nSent from my iPhone"
            self.stats["iphone"] += 1
        text = own + tail

        attr = quoted = None
        in_reply_to = None
        if incoming is not None:
            in_when, in_who, in_id, in_subject, in_text = incoming
            in_reply_to = in_id
            if style in ("gmail", "apple"):
                attr = (gmail_attr if style == "gmail" else apple_attr)(
                    in_when, in_who)
                shown = attr
                if len(attr) > 78 and rng.random() < 0.5:
                    shown = attr[:-len(" wrote:")] + "\nwrote:"
                text += "\n\n" + shown + "\n" + quote_lines(in_text)
                quoted = in_text
            elif style == "outlook":
                text += ("\n\n________________________________\n"
                         f"From: {in_who.addr}\nSent: {uk_sent(in_when)}\n"
                         f"To: {DANA.addr}\nSubject: {in_subject}\n\n"
                         + in_text)
            elif style == "original":
                text += ("\n\n-----Original Message-----\n"
                         f"From: {in_who.addr}\n"
                         f"Sent: {uk_sent_short(in_when)}\n"
                         f"To: {DANA.email}\nSubject: {in_subject}\n\n"
                         + in_text)
            if style != "none":
                self.stats["quoted_replies"] += 1

        html_text = None
        boundary = None
        if html_part:
            html_text = to_html(blocks, signature, attr, quoted)
            boundary = f"000000000000{self.rng.getrandbits(48):012x}"
            self.stats["html"] += 1
        refs = list(references)
        if in_reply_to and in_reply_to not in refs:
            refs.append(in_reply_to)
        msg = build_message(
            sender=DANA, to=who, subject=subject, date=when,
            msgid=self.msgid(when), text=text + "\n",
            in_reply_to=in_reply_to, references=refs or None,
            html_text=html_text, boundary=boundary)
        self.stats["replies" if is_reply else "new"] += 1
        return msg, text

    def pick_contact(self) -> Person:
        return self.rng.choices(DANA_CONTACTS,
                                [p.weight for p in DANA_CONTACTS])[0]

    def incoming_for(self, who, topic, ctx, when, subject):
        in_when = earlier_time(self.rng, when, 7, 22)
        return (in_when, who, other_msgid(self.rng, who), subject,
                self.incoming_text(who, topic, ctx))

    # -- message kinds -----------------------------------------------------
    def standalone(self, is_reply: bool, html_part: bool = False,
                   pii=None) -> Item:
        rng = self.rng
        extra = None
        if pii:
            who, topic = CONTACT[pii[0]], pii[1]
        else:
            while True:
                who = self.pick_contact()
                topic = rng.choice(GROUP_TOPICS[who.group])
                if openers(DANA_TOPICS[topic]["open"], is_reply):
                    break
        when = self.random_date()
        ctx = self.context(who, when)
        if pii:
            extra = pii[2].format_map(ctx)
            self.stats["pii_planted"] += 1
        base = rng.choice(DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        incoming = None
        style = "none"
        if is_reply:
            if html_part:
                style = "gmail"
            else:
                style = rng.choices(
                    ["gmail", "apple", "outlook", "original", "none"],
                    [50, 10, 17, 15, 8])[0]
            subject = "Re: " + base
            incoming = self.incoming_for(who, topic, ctx, when, base)
        else:
            subject = base
        msg, _ = self.compose(who=who, topic=topic, when=when,
                              subject=subject, ctx=ctx, is_reply=is_reply,
                              style=style, incoming=incoming,
                              html_part=html_part, extra=extra)
        return Item(when, msg)

    def thread(self, name: str, subject: str, stages: list, style: str,
               start: datetime | None = None):
        rng = self.rng
        who = CONTACT[name]
        self.stats["threads"] += 1
        if start is None:
            when = self.random_date(START, END - timedelta(days=60))
        else:
            when = london(self.random_time(start))
        job = next((p.short for p in DANA_CONTACTS
                    if p.group == "client" and p.short in subject), None)
        chain = []
        prev = None   # (when, full text) of Dana's previous message
        items = []
        for k, (topic, in_index, opener) in enumerate(stages):
            if k:
                day = when + timedelta(days=rng.randint(2, 9))
                naive = self.random_time(day.replace(tzinfo=None))
                while in_holiday(naive):
                    naive += timedelta(days=3)
                when = london(naive)
            ctx = self.context(who, when, job)
            job = ctx["job"]
            body = self.incoming_text(who, topic, ctx, in_index)
            if prev is None:
                in_when = earlier_time(rng, when, 7, 22)
            else:
                in_when = between(rng, prev[0], when, 7, 22)
                if style in ("gmail", "apple"):
                    attr = (gmail_attr if style == "gmail" else apple_attr)(
                        prev[0], DANA)
                    body += "\n\n" + attr + "\n" + quote_lines(prev[1])
                else:
                    body += ("\n\n-----Original Message-----\n"
                             if style == "original" else
                             "\n\n________________________________\n")
                    body += (f"From: {DANA.addr}\nSent: {uk_sent(prev[0])}\n"
                             f"To: {who.addr}\nSubject: Re: {subject}\n\n"
                             + prev[1])
            in_id = other_msgid(rng, who)
            in_subject = subject if k == 0 else "Re: " + subject
            msg, text = self.compose(
                who=who, topic=topic, when=when, subject="Re: " + subject,
                ctx=ctx, is_reply=True, style=style,
                incoming=(in_when, who, in_id, in_subject, body),
                references=list(chain), opener=opener)
            chain.extend([in_id, msg["Message-ID"]])
            prev = (when, text)
            items.append(Item(when, msg))
            self.stats["thread_messages"] += 1
        return items

    def received(self, name: str, topic: str) -> Item:
        """A message *to* Dana that ended up in her sent folder."""
        who = CONTACT[name]
        when = self.random_date()
        ctx = self.context(who, when)
        subject = self.rng.choice(
            DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        text = self.incoming_text(who, topic, ctx)
        msg = build_message(sender=who, to=DANA, subject=subject, date=when,
                            msgid=other_msgid(self.rng, who),
                            text=text + "\n")
        self.stats["received"] += 1
        return Item(when, msg)

    def auto_reply(self, holiday, name: str, topic: str) -> Item:
        rng = self.rng
        who = CONTACT[name]
        lo, hi, back = holiday
        day = lo + timedelta(days=rng.randrange(1, (hi - lo).days - 1))
        when = london(day.replace(hour=rng.randrange(8, 20),
                                  minute=rng.randrange(60),
                                  second=rng.randrange(60)))
        ctx = self.context(who, when)
        base = rng.choice(DANA_TOPICS[topic]["subjects"]).format_map(ctx)
        text = (f"Out of office\n\nThanks for your email. I'm away from the "
                f"studio until {back}, with very limited access to email.\n\n"
                "For anything urgent on a live project, please call "
                "+44 7700 900123 and leave a message.\n\n"
                "Dana Whitfield\nWillow Creek Garden Design\n")
        in_id = other_msgid(rng, who)
        msg = build_message(
            sender=DANA, to=who, subject=f"Out of office: Re: {base}",
            date=when, msgid=self.msgid(when), text=text,
            in_reply_to=in_id, references=[in_id],
            extra_headers=[("Auto-Submitted", "auto-replied"),
                           ("X-Autoreply", "yes")])
        self.stats["auto_replies"] += 1
        return Item(when, msg)


def generate_dana(count: int) -> tuple:
    w = DanaWriter(DANA_SEED)
    rng = w.rng
    items = []
    for name, subject, stages, style, start in DANA_THREADS:
        if w.stats["thread_messages"] + len(stages) > count // 3:
            break
        items.extend(w.thread(name, subject, stages, style, start))
    rest = count - len(items)
    n_reply = max(0, round(0.6 * count) - len(items))
    n_pii = min(len(DANA_PII), rest)
    n_html = min(10, max(0, (rest - n_pii) // 12))
    kinds = ["reply"] * min(n_reply, rest) + ["new"] * max(0, rest - n_reply)
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        pii = DANA_PII[i] if i < n_pii else None
        html_part = n_pii <= i < n_pii + n_html
        items.append(w.standalone(kind == "reply", html_part=html_part,
                                  pii=pii))
    for name, topic in [("Ben Marsh", "plant_order"), ("Jo Pemberton", "friend"),
                        ("Megan Price", "decline"), ("Tom Hargreaves", "thanks"),
                        ("Nina Shah", "accounts")]:
        items.append(w.received(name, topic))
    items.append(w.auto_reply(HOLIDAYS[0], "Helen Carter", "site_visit"))
    items.append(w.auto_reply(HOLIDAYS[1], "Kate Doyle", "stone_quote"))
    items.sort(key=lambda it: (it.when.astimezone(timezone.utc),
                               it.msg["Message-ID"]))
    stats = dict(w.stats)
    stats["dana_authored"] = stats["replies"] + stats["new"]
    stats["messages"] = len(items)
    return [it.msg for it in items], stats


# --------------------------------------------------------------------------
# Marcus
# --------------------------------------------------------------------------

class MarcusWriter:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.accepted = []
        self.ids = set()
        self.stats = {"replies": 0, "quoted_replies": 0, "new": 0, "html": 0,
                      "threads": 0, "thread_messages": 0}

    def random_date(self, lo: datetime = START, hi: datetime = END):
        rng = self.rng
        while True:
            day = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
            if day.weekday() >= 5:
                continue
            naive = day.replace(hour=rng.choices(
                range(7, 19), [5, 8, 9, 8, 6, 4, 6, 7, 6, 5, 3, 2])[0],
                minute=rng.randrange(60), second=rng.randrange(60))
            if naive <= hi:
                return chicago(naive)

    def msgid(self, dt: datetime) -> str:
        while True:
            mid = make_msgid(self.rng, dt, MARCUS.domain)
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    def context(self, who: Person, when: datetime, topic: str) -> dict:
        rng = self.rng
        deadline_day = when + timedelta(days=rng.randint(5, 20))
        while deadline_day.weekday() >= 5:
            deadline_day += timedelta(days=1)
        site = rng.choice(SITES)
        colleagues = [p.name for p in MARCUS_CONTACTS
                      if p.group == "internal" and p.name != who.name]
        return {
            "first": who.first,
            "org": who.org or "Northgate Logistics",
            "ref": f"PO-{rng.randrange(40000, 49999)}",
            "inv": f"INV-{when.year}-{rng.randrange(10000, 99999)}",
            "site": site,
            "site_title": site.replace("the ", "").title(),
            "week": str(when.isocalendar()[1]),
            "weekday": DAY_NAMES[rng.randrange(5)],
            "date_long": f"{MONTH_NAMES[when.month - 1]} {when.day}",
            "deadline": (f"{DAY_NAMES[deadline_day.weekday()]}, "
                         f"{MONTH_NAMES[deadline_day.month - 1]} "
                         f"{deadline_day.day}"),
            "month": MONTH_NAMES[when.month - 1],
            "quarter": f"Q{(when.month - 1) // 3 + 1}",
            "year": str(when.year + (when.month >= 10)),
            "carrier": rng.choice(CARRIERS),
            "doc": rng.choice(MARCUS_DOCS[topic]),
            "qty": str(rng.choice([12, 18, 24, 36, 48, 60, 120, 240])),
            "pct_small": f"{rng.uniform(2.5, 9.5):.1f} percent",
            "pct_accuracy": f"{rng.uniform(96.0, 99.3):.1f} percent",
            "pct_ontime": f"{rng.uniform(86.0, 95.8):.1f} percent",
            "amount": f"${rng.randrange(800, 48000):,}.{rng.randrange(100):02d}",
            "hours": str(rng.choice([40, 60, 80, 120, 160])),
            "headcount": str(rng.choice([4, 6, 8, 10, 12, 15])),
            "colleague": rng.choice(colleagues),
        }

    def own_text(self, who: Person, topic: str, ctx: dict, is_reply: bool):
        rng = self.rng
        T = MARCUS_TOPICS[topic]
        fill = lambda s: s.format_map(ctx)  # noqa: E731
        if who.group == "client" and rng.random() < 0.4:
            greeting = f"Dear {'Ms.' if who.first != 'Steven' else 'Mr.'} " \
                       f"{who.name.split()[-1]},"
        else:
            greeting = f"Dear {who.first},"
        blocks = [greeting]
        if is_reply and rng.random() < 0.15:
            blocks.append(fill(rng.choice(MARCUS_SHORT)))
        else:
            first = rng.choice(MARCUS_REPLY_OPENERS) if is_reply else ""
            opener = rng.choice(MARCUS_OPENERS)
            blocks.append(opener if not first else f"{opener} {first}")
            intro = [fill(s) for s in rng.sample(T["intro"],
                                                 rng.randint(1, 2))]
            if rng.random() < 0.5:
                intro.append(fill(rng.choice(MARCUS_EXTRA)))
            blocks.append(" ".join(intro))
            items = rng.sample(T["items"], rng.randint(3, 5))
            blocks.append(fill(T["list_intro"]))
            blocks.append("\n".join(f"{i}. {fill(s)}"
                                    for i, s in enumerate(items, 1)))
            if rng.random() < 0.5:
                blocks.append(fill(rng.choice(MARCUS_EXTRA)))
        blocks.append(rng.choice(MARCUS_CLOSINGS))
        word = "Kind regards," if rng.random() < 0.92 else "Best regards,"
        sig = f"{word}\nMarcus Bell\nOperations Manager"
        if rng.random() < 0.6:
            sig += "\nNorthgate Logistics, Inc.\n(312) 555-0148"
        blocks.append(sig)
        return blocks

    def choose_own(self, *args, threshold: float = 0.7, tries: int = 60):
        best = None
        for _ in range(tries):
            blocks = self.own_text(*args)
            ws = words("\n\n".join(blocks))
            worst = max((jaccard(ws, o) for o in self.accepted), default=0.0)
            if best is None or worst < best[0]:
                best = (worst, blocks, ws)
            if worst < threshold:
                break
        self.accepted.append(best[2])
        return best[1]

    def incoming_text(self, who: Person, topic: str, ctx: dict) -> str:
        body = MARCUS_TOPICS[topic]["incoming"].format_map(ctx)
        hello = self.rng.choice(["Hi Marcus,", "Marcus,", "Hello Marcus,"])
        bye = self.rng.choice(["Thanks,", "Regards,", "Best,"])
        org = f"\n{who.org}" if who.org else ""
        return f"{hello}\n\n{body}\n\n{bye}\n{who.sign}{org}"

    def compose(self, *, who, topic, when, subject, ctx, is_reply,
                style="none", incoming=None, references=(), html_part=False):
        rng = self.rng
        blocks = self.choose_own(who, topic, ctx, is_reply)
        text = "\n\n".join(blocks)
        attr = quoted = None
        in_reply_to = None
        if incoming is not None:
            in_when, in_who, in_id, in_subject, in_text = incoming
            in_reply_to = in_id
            if style == "gmail":
                attr = us_gmail_attr(in_when, in_who)
                text += "\n\n" + attr + "\n" + quote_lines(in_text)
                quoted = in_text
            elif style == "outlook":
                text += (f"\n\nFrom: {in_who.addr}\nSent: {us_sent(in_when)}\n"
                         f"To: {MARCUS.addr}\nSubject: {in_subject}\n\n"
                         + in_text)
            elif style == "original":
                text += ("\n\n-----Original Message-----\n"
                         f"From: {in_who.addr}\nSent: {us_sent(in_when)}\n"
                         f"To: {MARCUS.email}\nSubject: {in_subject}\n\n"
                         + in_text)
            if style != "none":
                self.stats["quoted_replies"] += 1
        html_text = boundary = None
        if html_part:
            html_text = to_html(blocks, None, attr, quoted)
            boundary = f"_000_{rng.getrandbits(64):016x}_"
            self.stats["html"] += 1
        refs = list(references)
        if in_reply_to and in_reply_to not in refs:
            refs.append(in_reply_to)
        msg = build_message(sender=MARCUS, to=who, subject=subject, date=when,
                            msgid=self.msgid(when), text=text + "\n",
                            in_reply_to=in_reply_to,
                            references=refs or None, html_text=html_text,
                            boundary=boundary)
        self.stats["replies" if is_reply else "new"] += 1
        return msg, text

    def standalone(self, is_reply: bool, html_part: bool = False) -> Item:
        rng = self.rng
        who = rng.choices(MARCUS_CONTACTS,
                          [p.weight for p in MARCUS_CONTACTS])[0]
        topic = rng.choice(MARCUS_CONTACT_TOPICS[who.name])
        when = self.random_date()
        ctx = self.context(who, when, topic)
        base = rng.choice(MARCUS_TOPICS[topic]["subjects"]).format_map(ctx)
        incoming = None
        style = "none"
        subject = base
        if is_reply:
            style = "gmail" if html_part else rng.choices(
                ["outlook", "original", "gmail", "none"], [45, 25, 20, 10])[0]
            subject = "RE: " + base if style != "gmail" else "Re: " + base
            in_when = earlier_time(rng, when, 7, 19, max_days=3)
            while in_when.weekday() >= 5:
                in_when -= timedelta(days=1)
            incoming = (in_when, who, other_msgid(rng, who), base,
                        self.incoming_text(who, topic, ctx))
        msg, _ = self.compose(who=who, topic=topic, when=when, subject=subject,
                              ctx=ctx, is_reply=is_reply, style=style,
                              incoming=incoming, html_part=html_part)
        return Item(when, msg)

    def thread(self, name, subject, topics, style):
        rng = self.rng
        who = next(p for p in MARCUS_CONTACTS if p.name == name)
        self.stats["threads"] += 1
        when = self.random_date(START, END - timedelta(days=60))
        chain, prev, items = [], None, []
        for k, topic in enumerate(topics):
            if k:
                naive = when.replace(tzinfo=None) + timedelta(
                    days=rng.randint(1, 6), hours=rng.randint(-3, 3))
                while naive.weekday() >= 5:
                    naive += timedelta(days=1)
                when = chicago(naive)
            ctx = self.context(who, when, topic)
            body = self.incoming_text(who, topic, ctx)
            if prev is None:
                in_when = earlier_time(rng, when, 7, 19)
            else:
                in_when = between(rng, prev[0], when, 7, 19)
                sep = ("\n\n-----Original Message-----\n"
                       if style == "original" else "\n\n")
                body += (sep + f"From: {MARCUS.addr}\n"
                         f"Sent: {us_sent(prev[0])}\nTo: {who.addr}\n"
                         f"Subject: RE: {subject}\n\n" + prev[1])
            in_id = other_msgid(rng, who)
            in_subject = subject if k == 0 else "RE: " + subject
            msg, text = self.compose(
                who=who, topic=topic, when=when, subject="RE: " + subject,
                ctx=ctx, is_reply=True, style=style,
                incoming=(in_when, who, in_id, in_subject, body),
                references=list(chain))
            chain.extend([in_id, msg["Message-ID"]])
            prev = (when, text)
            items.append(Item(when, msg))
            self.stats["thread_messages"] += 1
        return items


def generate_marcus(count: int) -> tuple:
    w = MarcusWriter(MARCUS_SEED)
    items = []
    for name, subject, topics, style in MARCUS_THREADS:
        if len(items) + len(topics) > count // 3:
            break
        items.extend(w.thread(name, subject, topics, style))
    rest = count - len(items)
    n_reply = max(0, round(0.4 * count) - len(items))
    n_html = min(4, rest // 20)
    kinds = ["reply"] * min(n_reply, rest) + ["new"] * max(0, rest - n_reply)
    w.rng.shuffle(kinds)
    for i, kind in enumerate(kinds):
        items.append(w.standalone(kind == "reply", html_part=i < n_html))
    items.sort(key=lambda it: (it.when.astimezone(timezone.utc),
                               it.msg["Message-ID"]))
    stats = dict(w.stats)
    stats["marcus_authored"] = stats["replies"] + stats["new"]
    stats["messages"] = len(items)
    return [it.msg for it in items], stats


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def generate(out_dir: Path, dana_count: int = 150,
             marcus_count: int = 90) -> dict:
    """Write both mailboxes into ``out_dir``; return per-file counts.

    ``dana_count`` is the number of hand-written Dana messages; the Dana
    mailbox additionally holds 5 received messages and 2 auto-replies.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dana_msgs, dana_stats = generate_dana(dana_count)
    marcus_msgs, marcus_stats = generate_marcus(marcus_count)
    write_mbox(out_dir / DANA_FILE, dana_msgs)
    write_mbox(out_dir / MARCUS_FILE, marcus_msgs)
    return {DANA_FILE: dana_stats, MARCUS_FILE: marcus_stats}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: %(default)s)")
    parser.add_argument("--dana-count", type=int, default=150)
    parser.add_argument("--marcus-count", type=int, default=90)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.dana_count, args.marcus_count)
    json.dump(counts, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
