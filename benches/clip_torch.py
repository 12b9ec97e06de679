"""Makes a ViT-B/32-shaped CLIP with random weights (transformers' default CLIPConfig is
ViT-B/32: 768-wide 12-layer vision tower, 32-px patches, 224-px images) in DIR if it is not
there, and times PyTorch's image tower at batch 64 on the same machine.

    python benches/clip_torch.py DIR [cpu|cuda]
Prints one JSON line: seconds per batch (best of 5 after a warm-up) and images/s."""

import json
import os
import sys
import time

import torch
from transformers import CLIPConfig, CLIPModel

out = sys.argv[1]
device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
if not os.path.exists(os.path.join(out, "model.safetensors")):
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).save_pretrained(out, safe_serialization=True)
model = CLIPModel.from_pretrained(out).eval().to(device)
dtype = torch.float32
if device == "cuda":
    model = model.half()
    dtype = torch.float16
x = torch.randn(64, 3, 224, 224, dtype=dtype, device=device)
times = []
with torch.inference_mode():
    model.get_image_features(pixel_values=x)
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        model.get_image_features(pixel_values=x)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
best = min(times)
print(json.dumps({"torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
                  "seconds_per_batch": best, "images_per_sec": 64 / best}))
