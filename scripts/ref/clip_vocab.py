"""Writes CLIP's BPE vocabulary in Hugging Face format (vocab.json + merges.txt).

Source: open_clip's bundled `bpe_simple_vocab_16e6.txt.gz`, turned into the exact token → id
table open_clip's SimpleTokenizer builds (and OpenAI CLIP / Hugging Face use): the 256 byte
characters, the same with `</w>`, one token per merge, then `<|startoftext|>` (49406) and
`<|endoftext|>` (49407). Output is deterministic, so re-running gives identical files.

Run with the reference environment (pinned: open_clip_torch 3.3.0, transformers 5.x):

    /work/refenv/bin/python scripts/ref/clip_vocab.py [OUT_DIR]

OUT_DIR defaults to tests/data/tiny-clip/.
"""

import gzip
import json
import sys
from pathlib import Path

import open_clip
from open_clip.tokenizer import bytes_to_unicode, default_bpe

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "tiny-clip"

# The number of merges open_clip (and OpenAI CLIP) keep from the file: 49152 - 256 - 2.
MERGES_KEPT = 49152 - 256 - 2
CHECK_TEXTS = [
    "a photo of a cat",
    "Two dogs playing in the snow, 2019!",
    "It's a café near the Eiffel Tower; naïve art & more.",
    "https://example.com/images/IMG_0042.jpg",
    "東京の夜景 🌃 and Москва",
]


def build():
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGES_KEPT + 1]]
    assert len(merges) == MERGES_KEPT and all(len(m) == 2 for m in merges)
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens) == 49408, "duplicate tokens"
    return vocab, merges


def write(out: Path):
    vocab, merges = build()
    out.mkdir(parents=True, exist_ok=True)
    # ensure_ascii=False keeps the byte characters readable; key order is id order.
    (out / "vocab.json").write_text(
        json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (out / "merges.txt").write_text(text, encoding="utf-8")
    return vocab


def check(out: Path, vocab):
    from transformers import CLIPTokenizer

    simple = open_clip.tokenizer.SimpleTokenizer()
    for token, i in vocab.items():
        if i < 49406:
            assert simple.encoder[token] == i, token
    assert simple.sot_token_id == 49406 and simple.eot_token_id == 49407

    # transformers 5 reads a folder's vocab.json + merges.txt (its CLIPTokenizer constructor
    # takes `vocab=` / `merges=`, not the `vocab_file=` of transformers 4).
    hf = CLIPTokenizer.from_pretrained(str(out))
    assert len(hf) == 49408, len(hf)
    for text in CHECK_TEXTS:
        ours = simple(text)[0].tolist()
        # Padding is trailing zeros; id 0 ("!") may also occur inside.
        while ours[-1] == 0:
            ours.pop()
        theirs = hf(text)["input_ids"]
        assert ours == theirs, (text, ours, theirs)
    print(f"wrote {out}: {len(vocab)} tokens, {MERGES_KEPT} merges; HF agrees on {len(CHECK_TEXTS)} texts")


if __name__ == "__main__":
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    check(out_dir, write(out_dir))
