#!/usr/bin/env python3
"""Converts a PyTorch checkpoint in the legacy (non-zip) format to safetensors.

    python3 scripts/convert_pth.py IN.pth OUT.safetensors

Standard library only (the install scripts run it where neither torch nor numpy is
installed). Every tensor is read through its own size, stride and storage offset, so a
tensor stored with non-standard strides (a transposed or sliced view saved as is; 50 of the
296 tensors of the EfficientNet-Lite0 checkpoint) comes out as its logical row-major values,
not as its storage bytes. Float tensors are written as F32; integer bookkeeping tensors
(BatchNorm's num_batches_tracked) as I64. Writes OUT atomically (temporary file + rename).

Format of the legacy file (torch/serialization.py, _legacy_load): five pickles and raw data
in a row: a magic number, the protocol version, system info, the object itself (tensors are
persistent ids naming a storage by key), the list of storage keys in the order their data
follows; then each storage as an int64 element count and its little-endian bytes.
"""

import collections
import json
import os
import pickle
import struct
import sys

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001

# storage type name -> (struct code, bytes per element, safetensors dtype)
STORAGES = {
    "FloatStorage": ("f", 4, "F32"),
    "DoubleStorage": ("d", 8, "F64"),
    "HalfStorage": ("e", 2, "F16"),
    "LongStorage": ("q", 8, "I64"),
    "IntStorage": ("i", 4, "I32"),
    "ShortStorage": ("h", 2, "I16"),
    "CharStorage": ("b", 1, "I8"),
    "ByteStorage": ("B", 1, "U8"),
    "BoolStorage": ("?", 1, "BOOL"),
}


class StorageType:
    def __init__(self, name):
        if name not in STORAGES:
            raise ValueError("unsupported storage type torch.%s" % name)
        self.name = name


class Storage:
    def __init__(self, kind, key, numel):
        self.kind = kind
        self.key = key
        self.numel = numel
        self.data = None  # bytes, filled in after the object pickle


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def values(self):
        """The tensor's elements in row-major order of its logical shape, as bytes."""
        code, width, _ = STORAGES[self.storage.kind.name]
        data = self.storage.data
        n = 1
        for s in self.size:
            n *= s
        if n == 0:
            return b""
        # Contiguous row-major: one slice.
        if _contiguous(self):
            start = self.offset * width
            return bytes(data[start:start + n * width])
        out = bytearray(n * width)
        index = [0] * len(self.size)
        for i in range(n):
            at = self.offset
            for d, k in enumerate(index):
                at += k * self.stride[d]
            out[i * width:(i + 1) * width] = data[at * width:(at + 1) * width]
            # Next index, last axis fastest.
            d = len(index) - 1
            while d >= 0:
                index[d] += 1
                if index[d] < self.size[d]:
                    break
                index[d] = 0
                d -= 1
        return bytes(out)


def rebuild_tensor(storage, offset, size, stride, *_rest):
    return Tensor(storage, offset, size, stride)


def rebuild_parameter(tensor, *_rest):
    return tensor


class Reader(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rebuild_parameter
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        raise pickle.UnpicklingError("unexpected object %s.%s in the checkpoint" % (module, name))

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id %r" % (saved_id,))
        kind, key, _location, numel, view = saved_id[1:6]
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = Storage(kind, key, numel)
        return self.storages[key]


def load(path):
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise SystemExit("%s is a zip checkpoint, not the legacy format this reads" % path)
        f.seek(0)
        if pickle.load(f) != MAGIC:
            raise SystemExit("%s: not a PyTorch checkpoint (wrong magic number)" % path)
        if pickle.load(f) != PROTOCOL:
            raise SystemExit("%s: unsupported protocol version" % path)
        info = pickle.load(f)
        if not info.get("little_endian", True):
            raise SystemExit("%s: big-endian checkpoints are not supported" % path)
        storages = {}
        obj = Reader(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            storage = storages[key]
            width = STORAGES[storage.kind.name][1]
            data = f.read(numel * width)
            if len(data) != numel * width:
                raise SystemExit("%s: storage %s is cut off" % (path, key))
            storage.data = data
        if f.read(1):
            raise SystemExit("%s: unexpected bytes after the last storage" % path)
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return obj


def save_safetensors(tensors, path):
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        blob = t.values()
        header[name] = {
            "dtype": STORAGES[t.storage.kind.name][2],
            "shape": list(t.size),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    state = load(sys.argv[1])
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise SystemExit("%s holds no tensors" % sys.argv[1])
    save_safetensors(tensors, sys.argv[2])
    strided = sum(1 for t in tensors.values() if not _contiguous(t))
    print("convert_pth: %d tensors (%d with non-standard strides) -> %s"
          % (len(tensors), strided, sys.argv[2]), file=sys.stderr)


def _contiguous(t):
    step = 1
    for s, st in zip(reversed(t.size), reversed(t.stride)):
        if s != 1 and st != step:
            return False
        step *= s
    return True


if __name__ == "__main__":
    main()
