"""Writes tests/data/clip-tokens.jsonl: reference CLIP token ids for ~300 varied captions.

Each line is {"text", "ids", "clean", "hf_same"}:
- ids: open_clip's SimpleTokenizer output (`open_clip.tokenize`, context length 77) with the
  trailing padding zeros trimmed, i.e. [49406] + BPE ids + [49407], truncated to 77 with the last id
  forced to 49407;
- clean: the text after open_clip's cleaning (ftfy.fix_text, html.unescape twice, whitespace
  collapse, lower-case), to tell cleaning mismatches from BPE mismatches;
- hf_same: whether Hugging Face's CLIPTokenizer, loaded from tests/data/tiny-clip (written by
  clip_vocab.py), gives the same ids with the same truncation. It does not run ftfy or HTML
  unescaping and treats `<|startoftext|>` as a special token, so it differs on some lines;
  the script asserts it agrees on the plain captions.

The captions are generated deterministically (fixed seed), so re-running gives the same file.
Pinned reference environment: Python 3.11, open_clip_torch 3.3.0, ftfy 6.3.1,
regex 2026.11.15, transformers 5.x.

    /work/refenv/bin/python scripts/ref/clip_tokens.py
"""

import json
import random
from pathlib import Path

import open_clip
from open_clip.tokenizer import SimpleTokenizer

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "data" / "clip-tokens.jsonl"
VOCAB_DIR = REPO / "tests" / "data" / "tiny-clip"
SEED = 20261122

ADJECTIVES = [
    "red", "small", "fluffy", "old", "shiny", "wooden", "golden", "rusty", "blurry", "happy",
    "sleepy", "enormous", "tiny", "striped", "vintage", "modern", "wet", "snowy", "colorful",
]
NOUNS = [
    "cat", "dog", "bicycle", "car", "house", "tree", "mountain", "lake", "bridge", "train",
    "sandwich", "guitar", "laptop", "horse", "boat", "flower", "castle", "robot", "giraffe",
    "skateboard", "umbrella", "teapot", "lighthouse", "sunflower", "motorcycle",
]
PLACES = [
    "beach", "city street", "forest", "kitchen", "park", "desert", "stadium", "library",
    "parking lot", "farm", "harbor", "museum", "subway station", "garden",
]
PREPOSITIONS = ["in", "on", "near", "next to", "behind", "in front of", "under", "above"]
STYLES = [
    "a photo of", "a close-up photo of", "an illustration of", "a painting of",
    "a black and white photo of", "a low resolution photo of", "a 3D render of", "a sketch of",
]
WORDS = (
    "the quick brown fox jumps over lazy dog while people watch from a distance under "
    "bright sunny sky with clouds drifting slowly across horizon and birds singing loudly"
).split()


def ordinary(rng):
    out = []
    for _ in range(60):
        style = rng.choice(STYLES)
        count = rng.choice(["a", "two", "three", "several", "many"])
        noun = rng.choice(NOUNS) + ("" if count == "a" else "s")
        text = (
            f"{style} {count} {rng.choice(ADJECTIVES)} {noun} {rng.choice(PREPOSITIONS)} "
            f"the {rng.choice(PLACES)}"
        )
        if rng.random() < 0.3:
            text = text[0].upper() + text[1:] + "."
        out.append(text)
    return out


def long_texts(rng):
    out = []
    for n in [70, 74, 75, 76, 77, 80, 120, 300]:
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    out.append("supercalifragilisticexpialidocious " * 40)
    out.append("!" * 500)
    out.append("a" * 1000)
    out.append("1234567890" * 20)
    return out


PUNCTUATION = [
    "wow!!! really?!?", "...", "--- end ---", "(a) [b] {c} <d>", "#sunset @john_doe",
    "a/b\\c|d", "emoticons :-) ;-( :P xD", "\"quoted\" and 'single'", "semi;colon:colon",
    "$5.99 + 20% tax = $7.19?", "hello,world", "C++ & C# & F#", "~tilde~ ^caret^ `tick`",
    "50/50 chance...", "well-known, state-of-the-art", "e.g. i.e. etc.", "¿qué? ¡sí!",
    "«guillemets» „low quotes\"", "100% * 2 = 200%", "under_score__double",
    "dash – en — em", "ellipsis… bullet • dot · star ★", "© 2024 ® ™", "°C ±5 µm ×2 ÷3",
    "!@#$%^&*()_+-=[]{};':\",./<>?",
]
NUMBERS = [
    "1234567", "3.14159", "1,000,000", "2nd place, 3rd row, 21st century", "10:30pm",
    "phone 555-0123", "year 1999", "0.5mm", "1e10", "x² + y³ = z¹", "½ cup and ¾ tsp",
    "Ⅻ o'clock", "٣٤٥ arabic digits", "१२३ devanagari digits", "①②③ circled", "IMG_20230101_123456",
]
URLS = [
    "https://example.com/images/IMG_0042.jpg", "http://www.test.org/path?q=1&r=2#frag",
    "www.google.com", "user@example.com", "file:///home/user/photo.png", "ftp://ftp.site.net/pub",
    "https://en.wikipedia.org/wiki/Café_(disambiguation)", "C:\\Users\\Photos\\beach.jpeg",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB",
    "https://t.co/AbC123xYz", "bit.ly/3xYz", "s3://bucket/key/part-0001.parquet",
    "visit example.com/a-b_c~d!", "<a href=\"https://x.y\">link</a>", "mailto:a.b+c@d-e.fr",
]
EMOJI = [
    "I love it 😍😍😍", "🌃 night city", "thumbs up 👍🏽", "family 👨‍👩‍👧‍👦", "flag 🇯🇵 🇫🇷",
    "heart ❤️ vs ❤", "🔥🔥 fire", "☀️ sunny ☔ rainy", "smile :) 😀", "🐱+🐶=❤",
    "keycap 1️⃣ #️⃣", "🏳️‍🌈 rainbow", "🤷‍♂️ shrug", "emoji-only 🍕", "🎉🎊🎈🎁",
]
ACCENTS = [
    "café", "naïve", "Zoë's façade", "résumé", "jalapeño piñata", "Ångström", "crème brûlée",
    "cafe\u0301 decomposed", "A\u030angstro\u0308m decomposed", "\u212b angstrom sign",
    "São Paulo", "Dvořák", "Łódź", "Þingvellir", "Ærøskøbing", "straße", "ﬁne ﬂower ﬀ",
]
SCRIPTS = [
    "東京の夜景", "我爱北京天安门", "猫が好きです", "カタカナ ｶﾀｶﾅ", "한국어 텍스트",
    "\u1112\u1161\u11ab\u1100\u1173\u11af jamo", "مرحبا بالعالم", "שלום עולם", "Москва зимой",
    "ПРИВЕТ Мир", "Ελληνικά ΟΔΟΣ ΟΔΟΣ.", "สวัสดีครับ", "नमस्ते दुनिया", "Tiếng Việt có dấu",
    "ქართული ენა", "Հայերեն", "ኢትዮጵያ", "ᏣᎳᎩ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "Ｆｕｌｌｗｉｄｔｈ　ＬＯＵＤ",
]
MIXED_CASE = [
    "iPhone 15 Pro Max", "McDonald's", "NASA JPL", "İstanbul", "STRASSE", "ẞ capital sharp s",
    "CamelCaseWordsHere", "sNaKe CaSe", "ΣΊΣΥΦΟΣ", "KELVIN \u212a sign", "it'ſ long s",
]
HTML = [
    "fish &amp; chips", "&quot;quoted&quot;", "it&#39;s", "&lt;b&gt;bold&lt;/b&gt;",
    "non&nbsp;breaking", "caf&eacute;", "CAF&EACUTE;", "&amp;amp;", "&amp;amp;amp;amp;",
    "smile &#x1F600;", "euro &#128;", "null &#0;", "&ampfoo &copy2024 &notit;",
    "semicolon &#59; x", "a<b &amp;amp;amp; c", "line one <br>\nline two &amp;amp;amp; x",
    "&hearts; &spades; &mdash; &hellip; &rsquo;", "&check; &NewLine; html5", "&AMP; &LT; &COPY;",
    "&#X41;&#x42;&#67", "&#99999999999; &#xD800;", "&unknown; & alone &",
    "&#x2019;s &#8220;curly&#8221;", "&Atilde;&copy; mojibake entity",
]
CONTRACTIONS = [
    "it's", "I'm here", "they're", "we've", "you'll", "he'd", "don't", "IT'S", "It’s curly",
    "rock 'n' roll", "'s alone", "o'clock", "can't won't shouldn't've",
    "James' book", "‘single’ “double”",
]
WHITESPACE = [
    "two  spaces", "tab\there", "new\nline", "cr\r\nlf", "  leading and trailing  ",
    "many\n\n\n\nnewlines", "nbsp\u00a0here", "ideographic\u3000space", "zero\u200bwidth",
    "\t\t tabs \t", "line\u2028separator", "para\u2029separator", "thin\u2009space",
    "nel\u0085char", "form\x0cfeed\x0bvtab", "mixed \t\n\r\x0c whitespace",
]
FTFY = [
    "ﬁ ligature", "ANSI \x1b[31mred\x1b[0m text", "bell\x07char", "null\x00char", "del\x7fchar",
    "\ufeffBOM at start", "C1 \x80 control", "\x93smart quotes\x94 via C1", "bidi\u202eoverride",
    "soft\u00adhyphen", "word\u2060joiner", "interlinear\ufff9anchor", "variation\ufe0fselector",
    "\u206aformatting\u206f", "ŉ ligature", "ǆ ǅ Ǆ", "\x1bnot an escape",
]
MOJIBAKE = ["cafÃ©", "Ã©tÃ© Ã  Paris", "â€œquotedâ€\x9d", "Ã¼ber cool", "voilÃ  le travail"]
SPECIAL = [
    "<start_of_text>", "<end_of_text> after", "<|startoftext|>hi", "<|endoftext|>",
    "<ſtart_of_text>", "<START_OF_TEXT>",
]
EDGE = ["", " ", "   \t\n  ", "\n", "a", "A", ".", "'", "''s", "\u0345", "a\u0345b"]


def soup(rng):
    """Random strings drawn from assorted Unicode ranges (all assigned before Unicode 14)."""
    ranges = [
        (0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
        (0x600, 0x6FF), (0x900, 0x97F), (0x2000, 0x206F), (0x2100, 0x218F), (0x2190, 0x23FF),
        (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFF00, 0xFFEF),
        (0x1F300, 0x1F5FF), (0x1D400, 0x1D4FF),
    ]
    out = []
    for _ in range(40):
        chars = []
        for _ in range(rng.randint(1, 30)):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


def captions():
    rng = random.Random(SEED)
    groups = {
        "ordinary": ordinary(rng),
        "long": long_texts(rng),
        "punctuation": PUNCTUATION,
        "numbers": NUMBERS,
        "urls": URLS,
        "emoji": EMOJI,
        "accents": ACCENTS,
        "scripts": SCRIPTS,
        "mixed_case": MIXED_CASE,
        "html": HTML,
        "contractions": CONTRACTIONS,
        "whitespace": WHITESPACE,
        "ftfy": FTFY,
        "mojibake": MOJIBAKE,
        "special": SPECIAL,
        "edge": EDGE,
        "soup": soup(rng),
    }
    return groups


def rust_entity_tables():
    """Prints the HTML entity tables of src/embed/clip/tokenizer.rs (`--rust-entities`).

    The Rust side carries the HTML 4 names plus `apos` and the upper-case HTML5 aliases
    (AMP, LT, ...) rather than all 2,231 HTML5 names; `LEGACY` lists the names that
    html.unescape also decodes without a trailing semicolon.
    """
    import html.entities as h

    upper_aliases = ["AMP", "COPY", "GT", "LT", "QUOT", "REG", "TRADE"]
    names = sorted(set(h.name2codepoint) | {"apos"} | set(upper_aliases))
    legacy = sorted(k for k in h.html5 if not k.endswith(";"))
    assert all(name in names for name in legacy)

    def escape(value):
        if value == '"':
            return '\\"'
        if not value.isprintable() or value.isspace():
            return "\\u{%x}" % ord(value)
        return value

    def wrap(const, doc, items):
        lines, line = [], ""
        for item in items:
            if len(line) + len(item) > 88:
                lines.append(line)
                line = ""
            line += item + " "
        lines.append(line.rstrip())
        body = " \\\n    ".join(line.rstrip() for line in lines)
        return f"/// {doc}\nconst {const}: &str = \"\\\n    {body}\";\n"

    entries = [f"{name}:{escape(h.html5[name + ';'])}" for name in names]
    doc = (
        "The HTML entities decoded, as `name:value` separated by spaces: the HTML 4 names, `apos`"
        "\n/// and HTML5's upper-case aliases. Written by `scripts/ref/clip_tokens.py --rust-entities`."
    )
    print(wrap("HTML_ENTITIES", doc, entries))
    doc = "The names `html.unescape` also decodes without a semicolon (HTML5's legacy names)."
    print(wrap("LEGACY_ENTITIES", doc, legacy), end="")


def trim_padding(row):
    """Drops the trailing padding zeros (id 0 is also "!", which may occur inside)."""
    while row and row[-1] == 0:
        row.pop()
    return row


def main():
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    hf = CLIPTokenizer.from_pretrained(str(VOCAB_DIR))
    groups = captions()
    lines = []
    seen = set()
    for group, texts in groups.items():
        for text in texts:
            if text in seen:
                continue
            seen.add(text)
            ids = trim_padding(open_clip.tokenize([text])[0].tolist())
            hf_ids = hf(text, truncation=True, max_length=77)["input_ids"]
            record = {
                "text": text,
                "ids": ids,
                "clean": simple.clean_fn(text),
                "hf_same": hf_ids == ids,
            }
            if group in ("ordinary", "long", "numbers", "contractions"):
                # Plain text: no ftfy or HTML effects, so HF must agree.
                assert "’" in text or hf_ids == ids, (text, ids, hf_ids)
            lines.append(json.dumps(record, ensure_ascii=True))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    same = sum('"hf_same": true' in line for line in lines)
    print(f"wrote {OUT}: {len(lines)} captions; Hugging Face agrees on {same}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--rust-entities"]:
        rust_entity_tables()
    else:
        main()
