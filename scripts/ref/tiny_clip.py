"""A tiny random CLIP made with `transformers` (fixed seed), and its reference outputs.

Writes tests/data/tiny-clip/{config.json, model.safetensors, preprocessor_config.json},
tests/data/tiny-clip-images/*.png and tests/data/tiny-clip-reference.json. The Rust tests
load the folder and must reproduce the outputs to ~1e-4.

Run with the pinned environment in scripts/ref/requirements.txt:
    python -m venv /tmp/refenv && /tmp/refenv/bin/pip install -r scripts/ref/requirements.txt
    /tmp/refenv/bin/python scripts/ref/tiny_clip.py
The tokenizer files (vocab.json, merges.txt) come from scripts/ref/clip_vocab.py.
"""

import json
import math
import os
import sys

import numpy as np
import open_clip
import torch
import transformers
from PIL import Image
from transformers import CLIPConfig, CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
OUT = os.path.join(ROOT, "tiny-clip")
IMAGES = os.path.join(ROOT, "tiny-clip-images")


def pixel_formula(batch, channels, side):
    """Deterministic input both sides can compute: sin of position, channel and item."""
    b, c, h, w = np.meshgrid(
        np.arange(batch), np.arange(channels), np.arange(side), np.arange(side), indexing="ij"
    )
    return (np.sin(0.05 * (h * side + w) + c * 1.3 + b * 0.7) * 1.5).astype(np.float32)


def main():
    torch.manual_seed(0)
    text = dict(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=24,
    )
    vision = dict(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        image_size=64, patch_size=16, hidden_act="gelu", projection_dim=24,
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        # Non-trivial norms and biases, so swapped gamma/beta or a missed bias shows.
        for name, p in model.named_parameters():
            if "norm" in name or "layrnorm" in name or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.2)
            if "class_embedding" in name or "position_embedding" in name:
                p.add_(torch.randn_like(p) * 0.5)
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    processor = CLIPImageProcessorPil(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    processor.save_pretrained(OUT)

    reference = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "open_clip": open_clip.__version__,
            "python": sys.version.split()[0],
        }
    }
    with torch.no_grad():
        pixels = torch.from_numpy(pixel_formula(3, 3, 64))
        feats = model.get_image_features(pixel_values=pixels)
        if not isinstance(feats, torch.Tensor):
            feats = feats.pooler_output
        reference["formula_image_features"] = feats.tolist()

        texts = [
            "a photo of a cat",
            "A DOG running on the beach, at sunset!",
            "",
            "naïve café – “quotes” and emoji 🐶🐱",
            " ".join(["word"] * 120),
        ]
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        ids = tokenizer(texts)  # [n, 77], zero padded
        rows = []
        for row in ids.tolist():
            end = row.index(49407) + 1
            rows.append(row[:end])
        reference["texts"] = texts
        reference["input_ids"] = rows
        text_feats = []
        for row in rows:
            t = torch.tensor([row])
            f = model.get_text_features(input_ids=t)
            if not isinstance(f, torch.Tensor):
                f = f.pooler_output
            text_feats.append(f[0].tolist())
        reference["text_features"] = text_feats
        # A padded batch (end-token padding, as the Rust side pads) gives the same.
        width = max(len(r) for r in rows)
        padded = torch.tensor([r + [49407] * (width - len(r)) for r in rows])
        f = model.get_text_features(input_ids=padded)
        if not isinstance(f, torch.Tensor):
            f = f.pooler_output
        assert torch.allclose(f, torch.tensor(text_feats), atol=1e-5)

        # Real preprocessing on odd-sized images.
        os.makedirs(IMAGES, exist_ok=True)
        rng = np.random.default_rng(7)
        images = []
        for name, (w, h) in [("wide.png", (97, 61)), ("tall.png", (50, 131)), ("big.png", (300, 280))]:
            yy, xx = np.mgrid[0:h, 0:w]
            arr = np.stack(
                [
                    (127 + 120 * np.sin(xx / 7.0 + yy / 11.0)),
                    (127 + 120 * np.cos(xx / 5.0 - yy / 3.0)),
                    rng.integers(0, 256, size=(h, w)),
                ],
                axis=-1,
            ).clip(0, 255).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(os.path.join(IMAGES, name))
            img = Image.open(os.path.join(IMAGES, name)).convert("RGB")
            pv = processor(images=img, return_tensors="pt")["pixel_values"]
            f = model.get_image_features(pixel_values=pv)
            if not isinstance(f, torch.Tensor):
                f = f.pooler_output
            images.append(
                {
                    "file": name,
                    "pixel_values": [round(float(v), 6) for v in pv[0].flatten().tolist()],
                    "image_features": f[0].tolist(),
                }
            )
        reference["images"] = images
        reference["logit_scale"] = float(model.logit_scale.exp())

    with open(os.path.join(ROOT, "tiny-clip-reference.json"), "w") as f:
        json.dump(reference, f)
    print("wrote", OUT, "and the reference")


if __name__ == "__main__":
    main()
