"""Class-folder sets with planted label noise, from real images that packages ship.

Written independently of curate (numpy and Pillow only). Each set is an ImageFolder tree
(`OUT/<set>/<class>/<file>`) plus `truth.json` naming, for every image, its true class, the
class folder it was put in, and whether that label is wrong.

  emoji-<vendor>   the 64 px emoji of one vendor (npm emoji-datasource-<vendor>@16.0.0),
                   classes = the Unicode emoji categories (Smileys & Emotion, Animals & Nature,
                   ...; 'Component' left out)
  digits-a / -b    scikit-learn's 8x8 handwritten digits (rows 0-897 / 898-1796) upscaled to
                   64 px, classes 0-9

Noise: a share of the images (default 8 %) is moved to a wrong class folder, half of them
uniformly at random, half to a confusable class (a fixed map written from the category
names, not from any model).
"""
import argparse
import gzip
import io
import json
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CONFUSABLE_EMOJI = {
    "Smileys & Emotion": "People & Body", "People & Body": "Smileys & Emotion",
    "Animals & Nature": "Food & Drink", "Food & Drink": "Animals & Nature",
    "Travel & Places": "Objects", "Objects": "Activities", "Activities": "Objects",
    "Symbols": "Flags", "Flags": "Symbols",
}
CONFUSABLE_DIGIT = {0: 6, 1: 7, 2: 7, 3: 8, 4: 9, 5: 6, 6: 5, 7: 1, 8: 3, 9: 4}


def slug(name):
    return name.replace(" & ", "_and_").replace(" ", "_").lower()


def emoji_images(sources, vendor):
    root = sources / "npm" / vendor
    data = json.load(open(root / "emoji.json"))
    out = []
    for e in data:
        if e["category"] == "Component" or not e.get(f"has_img_{vendor}"):
            continue
        f = root / "img" / vendor / "64" / e["image"]
        if f.exists():
            out.append((slug(e["category"]), e["category"], f.read_bytes(), e["image"]))
    return out


def digits_images(sources, rows):
    wheel = next((sources / "pypi").glob("scikit_learn-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        raw = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz")).decode()
    table = np.array([[float(v) for v in line.split(",")] for line in raw.strip().splitlines()])
    out = []
    rng = random.Random(7)
    for i in range(*rows):
        pix, label = table[i, :64].reshape(8, 8), int(table[i, 64])
        img = Image.fromarray((255 - pix * 255 / 16).astype(np.uint8), "L")
        side = rng.choice([56, 64, 72])
        img = img.resize((side, side), Image.BICUBIC).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append((str(label), label, buf.getvalue(), f"digit_{i:04d}.png"))
    return out


def write(out_dir, name, items, share, seed, confusable):
    rng = random.Random(seed)
    d = out_dir / name
    if d.exists():
        shutil.rmtree(d)
    classes = sorted({c for c, _, _, _ in items})
    key_of = {c: k for c, k, _, _ in items}
    order = list(range(len(items)))
    rng.shuffle(order)
    n_noisy = round(share * len(items))
    noisy = {}
    for j, i in enumerate(order[:n_noisy]):
        true = items[i][0]
        if j % 2 == 0:
            target = confusable[key_of[true]]
            target = next(c for c in classes if key_of[c] == target)
        else:
            target = rng.choice([c for c in classes if c != true])
        noisy[i] = target
    truth = {"format": 1, "set": name, "seed": seed, "noise_share": share,
             "generator": "benches/label_eval/make_set.py", "classes": classes, "images": {}}
    for i, (cls, _, data, fname) in enumerate(items):
        given = noisy.get(i, cls)
        rel = f"{given}/{fname}"
        (d / given).mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
        truth["images"][rel] = {"true_class": cls, "given_class": given, "mislabelled": i in noisy}
    (d / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"{name}: {len(items)} images, {len(classes)} classes, {n_noisy} mislabelled -> {d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sources", default=str(Path.home() / ".cache/curate-eval/sources"))
    ap.add_argument("--set", choices=["dev", "heldout"], default="dev")
    ap.add_argument("--share", type=float, default=0.08)
    a = ap.parse_args()
    out, src = Path(a.out), Path(a.sources)
    if a.set == "dev":
        write(out, "emoji-twitter", emoji_images(src, "twitter"), a.share, 11, CONFUSABLE_EMOJI)
        write(out, "digits-a", digits_images(src, (0, 898)), a.share, 12, CONFUSABLE_DIGIT)
    else:
        write(out, "emoji-apple", emoji_images(src, "apple"), a.share, 21, CONFUSABLE_EMOJI)
        write(out, "digits-b", digits_images(src, (898, 1797)), a.share, 22, CONFUSABLE_DIGIT)


if __name__ == "__main__":
    main()
