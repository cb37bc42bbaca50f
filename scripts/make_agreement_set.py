#!/usr/bin/env python3
"""Builds the agreement benchmark of what users type: compressor/data/agreement.jsonl.

One JSON object per line: {"category": ..., "text": ..., "source": ...}. Categories:

  query        short queries, 1-5 words (EWT dev sentences of that length, and search-box
               strings of 2-4 content-word lemmas from one EWT dev sentence)
  word         single words (EWT dev tokens) and single characters (written here)
  punctuation  punctuation and whitespace-only inputs (written here)
  number_code  numbers, dates, identifiers, URLs, e-mail addresses (Faker) and code (written
               here)
  name         people, companies and places in Latin script (Faker, 8 locales)
  script       text in other scripts: Cyrillic, Greek, Arabic, Persian, Hebrew, Armenian,
               Georgian, Chinese, Japanese, Korean, Devanagari, Thai (Faker)
  long         paragraphs past 256 tokens, all-MiniLM-L6-v2's maximum length (consecutive
               EWT dev sentences of one document, at least 260 words)
  sentence     ordinary sentences of 8-30 words (EWT dev)

Sources and licenses (compressor/data/README.md): UD English EWT v2.15 *dev* split (CC BY-SA
4.0; never in a bertling training corpus: those are WikiText-2 and GLUE train splits), Faker
40.63.0 (MIT) with a fixed seed, and strings written for this file. Deterministic: the same
inputs give the same file.

Usage: pip install faker==40.63.0
       make_agreement_set.py ../shared/data/ud_english_ewt/en_ewt-ud-dev.conllu OUT.jsonl
"""
import datetime
import json
import os
import random
import sys

PER_CATEGORY = 50
SEED = 20261201

PUNCTUATION = [
    "?", "!", ".", ",", "...", "?!", "!!!", "???", "-", "--", "\u2014", "\u2026", ":)", ":-(",
    ";", "()", "[]", "{}", "\"\"", "''", "#", "@", "&", "*", "/", "\\", "|", "~", "^", "%",
    " ", "  ", "     ", "\t", "\n", " \n ", "\t\t", "\u00a0", "\u3000", ". . .",
    "- - -", "* * *", "?? !!", "\u00bf?", "\u00a1!", "\u00ab\u00bb", "\u201c\u201d", "<>", "==", "+",
]

CHARACTERS = [
    "a", "I", "x", "Z", "q", "7", "0", "\u00e9", "\u00df", "\u00f1", "\u00e6", "\u00f8",
    "\u0436", "\u03bb", "\u05d0", "\u0639", "\u4e2d", "\u3042", "\ud55c", "\u20ac", "$", "\u00a3",
    "\u00a9", "\u00b0", "\u00b1",
]

CODE = [
    "for i in range(10): print(i)",
    "SELECT name, email FROM users WHERE id = 42;",
    "git commit -m \"fix typo\"",
    "def add(a, b):\n    return a + b",
    "{\"id\": 7, \"tags\": [\"a\", \"b\"]}",
    "<div class=\"header\">Hello</div>",
    "x = [i * i for i in xs if i % 2 == 0]",
    "ls -la /usr/local/bin | grep python",
    "fn main() { println!(\"hi\"); }",
    "Exception in thread \"main\" java.lang.NullPointerException",
    "^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$",
    "curl -s https://example.com/api/v1/items?page=2",
    "npm install --save-dev typescript@5.4",
    "if (err != nil) { return err }",
    "TypeError: 'NoneType' object is not subscriptable",
    "0x7fff5fbff8a8",
    "3.14159265358979",
    "1,000,000",
    "-273.15",
    "6.022e23",
    "42",
    "v2.15.1",
    "12:45 PM",
    "100%",
    "2 + 2 = 4",
]


def read_ewt(path):
    """Sentences as (doc, text, [(form, lemma, upos)])."""
    out, doc, text, toks = [], None, None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# newdoc id = "):
                doc = line[len("# newdoc id = "):]
            elif line.startswith("# text = "):
                text = line[len("# text = "):]
            elif not line:
                if text is not None:
                    out.append((doc, text, toks))
                text, toks = None, []
            elif not line.startswith("#"):
                cols = line.split("\t")
                if cols[0].isdigit():
                    toks.append((cols[1], cols[2], cols[3]))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_agreement_set.py EN_EWT_DEV.conllu OUT.jsonl")
    # Some Faker locales draw from sets of strings, whose order follows the string hash seed.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    import faker

    rng = random.Random(SEED)
    sents = read_ewt(sys.argv[1])
    items = []

    def add(category, texts, source):
        for t in texts:
            items.append({"category": category, "text": t, "source": source})

    def words(toks):
        return [t for t in toks if t[2] not in ("PUNCT", "SYM")]

    # Short queries: half EWT sentences of 1-5 words, half lemma strings.
    short = sorted({s[1] for s in sents if 1 <= len(words(s[2])) <= 5 and len(s[1]) > 3})
    add("query", rng.sample(short, PER_CATEGORY // 2), "ud-english-ewt-dev")
    content = [s for s in sents if len([t for t in s[2] if t[2] in ("NOUN", "PROPN", "ADJ")]) >= 3]
    lemmas = []
    for s in rng.sample(content, PER_CATEGORY - PER_CATEGORY // 2):
        cw = [t[1].lower() if t[2] != "PROPN" else t[0] for t in s[2] if t[2] in ("NOUN", "PROPN", "ADJ")]
        lemmas.append(" ".join(cw[: rng.randint(2, min(4, len(cw)))]))
    add("query", lemmas, "ud-english-ewt-dev (lemmas)")

    # Single words and characters.
    vocab = sorted({t[0] for s in sents for t in words(s[2]) if t[0].isalpha() and len(t[0]) > 1})
    add("word", rng.sample(vocab, PER_CATEGORY - len(CHARACTERS)), "ud-english-ewt-dev")
    add("word", CHARACTERS, "written")

    add("punctuation", PUNCTUATION, "written")

    fk = faker.Faker("en_US")
    fk.seed_instance(SEED)
    # Dates from fixed bounds: Faker's defaults end at today, which would change the file.
    lo, hi = datetime.datetime(1950, 1, 1), datetime.datetime(2030, 1, 1)
    gen = [fk.date_between_dates(lo.date(), hi.date()).isoformat(), fk.phone_number(), fk.ipv4(),
           fk.url(), fk.email(), fk.isbn13(), fk.iban(), fk.postcode(),
           fk.date_time_between_dates(lo, hi).strftime("%H:%M:%S"), fk.uuid4(), fk.license_plate(),
           fk.street_address(), fk.bothify("##/##"), fk.ean13(), fk.hex_color(), fk.mac_address(),
           fk.ipv6(), fk.file_path(), fk.user_name(), fk.date_time_between_dates(lo, hi).isoformat(),
           fk.pyfloat(3, 2), fk.random_int(0, 99999), fk.msisdn(), fk.bban(), fk.swift()]
    add("number_code", [str(g) for g in gen], "faker en_US")
    add("number_code", CODE, "written")

    names = []
    for i, loc in enumerate(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "vi_VN"]):
        f = faker.Faker(loc)
        f.seed_instance(SEED + i)
        names += [f.name(), f.name(), f.first_name(), f.last_name(), f.company(), f.city()]
    add("name", names[:PER_CATEGORY - 2] + ["Dr. Jane O'Neil-Smith", "McDonald's"], "faker (8 locales); 2 written")

    scripts = []
    locs = ["ru_RU", "uk_UA", "el_GR", "ar_AA", "fa_IR", "he_IL", "hy_AM", "zh_CN", "ja_JP", "th_TH",
            "ko_KR", "hi_IN", "ka_GE"]
    for i, loc in enumerate(locs):
        f = faker.Faker(loc)
        f.seed_instance(SEED + 100 + i)
        # Korean, Hindi and Georgian lorem text is Latin in Faker: names and places only there.
        if loc in ("ko_KR", "hi_IN", "ka_GE"):
            scripts += [f.name(), f.city(), f.name()]
        else:
            scripts += [f.sentence(nb_words=6), f.name(), f.city(), f.word()]
    scripts = [t for t in scripts if t.strip()][:PER_CATEGORY - 1]
    add("script", scripts, "faker (13 locales)")
    add("script", ["Tokyo \u6771\u4eac, \u041c\u043e\u0441\u043a\u0432\u0430 and \u0391\u03b8\u03ae\u03bd\u03b1"], "written")

    # Long paragraphs: consecutive sentences of one document up to >= 260 words (well past 256
    # tokens).
    by_doc = {}
    for doc, text, toks in sents:
        by_doc.setdefault(doc, []).append(text)
    paras = []
    for doc in sorted(by_doc):
        cur = []
        for t in by_doc[doc]:
            cur.append(t)
            if sum(len(x.split()) for x in cur) >= 260:
                paras.append(" ".join(cur))
                cur = []
    add("long", rng.sample(paras, min(25, len(paras))), "ud-english-ewt-dev (documents)")

    ordinary = sorted({s[1] for s in sents if 8 <= len(s[1].split()) <= 30})
    add("sentence", rng.sample(ordinary, PER_CATEGORY), "ud-english-ewt-dev")

    with open(sys.argv[2], "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    counts = {}
    for it in items:
        counts[it["category"]] = counts.get(it["category"], 0) + 1
    print(f"wrote {len(items)} inputs to {sys.argv[2]}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
