#!/usr/bin/python3
"""Independent PyTorch-autograd reference for LoRA on LLaMA-family GGUF models.

    /usr/bin/python3 tests/torch/lora_ref.py --model BASE.gguf [--adapter PEFT_DIR]
        --inputs IN.safetensors --out OUT.safetensors [--dtype float64|float32]

What it does, step by step:

 1. Reads the base model from a GGUF v3 file (own reader below: header, KV
    pairs of every value type, tensor infos, aligned data section; tensor
    types F32, F16, BF16 and Q8_0 are dequantized to float).
 2. Builds the LLaMA model in Hugging Face transformers' layout (written out
    by hand: RMSNorm, rotate_half RoPE, causal grouped-query attention,
    SwiGLU MLP, output head).  GGUF stores the rows of attn_q / attn_k
    permuted for llama.cpp's interleaved-pair RoPE; they are un-permuted on
    load (gguf_to_hf_rows) so that the HF-layout model computes exactly what
    the GGUF model computes.
 3. Optionally reads a Hugging Face PEFT LoRA adapter (adapter_config.json +
    adapter_model.safetensors, HF-layout names and shapes) and applies it as
    PEFT does at eval time: y = x W^T + (x A^T) B^T * scaling.
 4. Reads the inputs (safetensors): `tokens` int32 (B, T), optional `labels`
    int32 (B, T), labels[b, t] = target of the prediction made at position t
    (already shifted), -100 = ignored.  Positions are 0..T-1 in every row.
    Optional LoRA dropout masks, for an adapter in training mode: a float
    tensor `dropout.layers.N.MODULE` (B, T, in) multiplies the input of
    layer N's MODULE adapter, as PEFT's lora_dropout does
    (lora_B(lora_A(dropout(x))) * scaling, dropout(x) = x * mask with mask
    0 or 1 / (1 - p)); the base projection sees x.  The masks come from the
    caller because the caller's generator is not torch's.  A targeted module
    without a mask gets none (eval mode).
 5. Computes logits (B, T, V) in --dtype (default float64; weights upcast),
    and with labels the mean cross-entropy over the non-ignored positions of
    the whole batch, then loss.backward() to get d loss / d A and d loss / d B.
 6. Writes OUT.safetensors: `logits` F32 (B, T, V); with labels `loss` F64
    (1,) and, for every adapter tensor NAME, `NAME.grad` F64 (same shape as
    NAME); `__metadata__` holds the hyper-parameters used.

Only the standard library, numpy and torch are used.  Every malformed input
is reported as "FILE: FIELD: problem" and the exit status is non-zero.
"""

import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


class RefError(Exception):
    """A malformed or unsupported input; the message names the file and field."""


def fail(path, field, msg):
    raise RefError(f"{path}: {field}: {msg}")


# ---------------------------------------------------------------------------
# Q / K row permutation between HF layout and GGUF (llama.cpp) layout
# ---------------------------------------------------------------------------
#
# HF LLaMA applies RoPE with rotate_half: inside each head of size hd, element
# i is rotated together with element i + hd/2 (angle pos * theta^(-2i/hd)).
# llama.cpp (GGUF) rotates interleaved pairs: element 2i with element 2i+1
# (same angle).  llama.cpp's converter therefore reorders the output rows of
# q_proj / k_proj (n_head_kv heads for k) so that HF row h*hd + a*hd/2 + i
# becomes GGUF row h*hd + 2i + a (a in {0, 1}):
#
#     w.reshape(n_head, 2, out // n_head // 2, in).swapaxes(1, 2).reshape(out, in)
#
# With the rows of q and k reordered the same way inside every head, the
# rotated q . k dot products (hence attention) are unchanged.  To run a GGUF
# file with the HF-layout model we apply the inverse reordering on load.  A
# PEFT lora_B of q_proj / k_proj (shape (out, r)) is in HF row order; the C
# side converts it with hf_to_gguf_rows to add it to GGUF-layout weights.
# Both functions work on numpy arrays and torch tensors of shape (out, ...).

def hf_to_gguf_rows(w, n_head):
    """HF row order -> GGUF row order (llama.cpp convert_hf_to_gguf permute)."""
    out = w.shape[0]
    if out % (2 * n_head):
        raise ValueError(f"{out} rows are not n_head={n_head} heads of even size")
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_to_hf_rows(w, n_head):
    """GGUF row order -> HF row order (inverse of hf_to_gguf_rows)."""
    out = w.shape[0]
    if out % (2 * n_head):
        raise ValueError(f"{out} rows are not n_head={n_head} heads of even size")
    return w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---------------------------------------------------------------------------
# GGUF reader (spec: ggml docs/gguf.md)
# ---------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"

# KV value types: id -> (name, struct format or None for string/array)
GGUF_VALUE_TYPES = {
    0: ("UINT8", "<B"), 1: ("INT8", "<b"), 2: ("UINT16", "<H"), 3: ("INT16", "<h"),
    4: ("UINT32", "<I"), 5: ("INT32", "<i"), 6: ("FLOAT32", "<f"), 7: ("BOOL", "<?"),
    8: ("STRING", None), 9: ("ARRAY", None), 10: ("UINT64", "<Q"), 11: ("INT64", "<q"),
    12: ("FLOAT64", "<d"),
}
# numpy dtypes of the fixed-size value types, for reading arrays in one go
GGUF_VALUE_NP = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4",
                 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}

# tensor types this reader dequantizes: id -> (name, block size in elements, bytes per block)
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 8: ("Q8_0", 32, 34), 30: ("BF16", 1, 2)}

GGUF_DEFAULT_ALIGNMENT = 32


class GGUFTensorInfo:
    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims            # as stored: fastest-varying first (ne0, ne1, ...)
        self.ggml_type = ggml_type
        self.offset = offset        # relative to the start of the data section

    @property
    def shape(self):
        """numpy (row-major) shape: the GGUF dims reversed."""
        return tuple(reversed(self.dims))


class GGUFFile:
    """A parsed GGUF file: .version, .kv (key -> python value), .value_types
    (key -> GGUF type id), .tensors (name -> GGUFTensorInfo), .alignment,
    .data_start; .tensor(name) returns a dequantized numpy float32 array."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.buf = f.read()
        except OSError as e:
            raise RefError(f"{path}: cannot read: {e.strerror}")
        self.pos = 0
        self._parse()

    # -- low-level readers; every read is bounds-checked ---------------------
    def _take(self, n, field):
        if n < 0 or self.pos + n > len(self.buf):
            fail(self.path, field, f"file truncated (need {n} bytes at offset {self.pos}, "
                 f"file has {len(self.buf)})")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _scalar(self, fmt, field):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt), field))[0]

    def _string(self, field):
        n = self._scalar("<Q", field + " (string length)")
        raw = self._take(n, field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            fail(self.path, field, "string is not valid UTF-8")

    def _value(self, vtype, field):
        if vtype not in GGUF_VALUE_TYPES:
            fail(self.path, field, f"unknown value type {vtype}")
        name, fmt = GGUF_VALUE_TYPES[vtype]
        if name == "STRING":
            return self._string(field)
        if name == "ARRAY":
            etype = self._scalar("<I", field + " (array element type)")
            count = self._scalar("<Q", field + " (array length)")
            if etype in GGUF_VALUE_NP:
                dt = np.dtype(GGUF_VALUE_NP[etype])
                if count * dt.itemsize > len(self.buf) - self.pos:
                    fail(self.path, field, f"array of {count} elements runs past the end of the file")
                arr = np.frombuffer(self._take(count * dt.itemsize, field), dtype=dt)
                return arr.astype(bool).tolist() if etype == 7 else arr.tolist()
            if etype == 8 or etype == 9:
                if count > len(self.buf) - self.pos:   # each element takes >= 1 byte... (>= 8)
                    fail(self.path, field, f"array of {count} elements runs past the end of the file")
                return [self._value(etype, f"{field}[{i}]") for i in range(count)]
            fail(self.path, field, f"unknown array element type {etype}")
        v = self._scalar(fmt, field)
        return bool(v) if name == "BOOL" else v

    # -- the file layout -----------------------------------------------------
    def _parse(self):
        p = self.path
        if self._take(4, "magic") != GGUF_MAGIC:
            fail(p, "magic", "not a GGUF file (expected 'GGUF')")
        self.version = self._scalar("<I", "version")
        if self.version not in (2, 3):
            fail(p, "version", f"GGUF version {self.version} is not supported (need 3; 2 is accepted)")
        n_tensors = self._scalar("<Q", "tensor_count")
        n_kv = self._scalar("<Q", "metadata_kv_count")
        if n_tensors > len(self.buf) or n_kv > len(self.buf):
            fail(p, "header", f"implausible counts: {n_tensors} tensors, {n_kv} KV pairs")

        self.kv = {}
        self.value_types = {}
        for i in range(n_kv):
            key = self._string(f"KV pair {i} key")
            vtype = self._scalar("<I", f"{key} (value type)")
            if key in self.kv:
                fail(p, key, "duplicate key")
            self.kv[key] = self._value(vtype, key)
            self.value_types[key] = vtype

        self.alignment = GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in self.kv:
            a = self.kv["general.alignment"]
            if self.value_types["general.alignment"] not in (0, 2, 4, 10) or a == 0 or a % 8:
                fail(p, "general.alignment", f"must be a non-zero unsigned multiple of 8, got {a!r}")
            self.alignment = a

        self.tensors = {}
        for i in range(n_tensors):
            name = self._string(f"tensor info {i} name")
            n_dims = self._scalar("<I", f"tensor {name} n_dimensions")
            if not 1 <= n_dims <= 4:
                fail(p, f"tensor {name}", f"n_dimensions = {n_dims} (must be 1..4)")
            dims = [self._scalar("<Q", f"tensor {name} dimensions") for _ in range(n_dims)]
            ggml_type = self._scalar("<I", f"tensor {name} type")
            offset = self._scalar("<Q", f"tensor {name} offset")
            if name in self.tensors:
                fail(p, f"tensor {name}", "duplicate tensor name")
            if offset % self.alignment:
                fail(p, f"tensor {name} offset", f"{offset} is not a multiple of the alignment {self.alignment}")
            self.tensors[name] = GGUFTensorInfo(name, dims, ggml_type, offset)

        # the data section starts at the next multiple of the alignment
        self.data_start = (self.pos + self.alignment - 1) // self.alignment * self.alignment
        if self.data_start > len(self.buf) and n_tensors:
            fail(p, "data section", "file ends before the tensor data")
        # check every tensor's extent now, even the ones that are never read
        for t in self.tensors.values():
            nbytes = self._nbytes(t)
            if nbytes is not None and self.data_start + t.offset + nbytes > len(self.buf):
                fail(p, f"tensor {t.name}", f"data [{t.offset}, {t.offset + nbytes}) of the data section "
                     f"runs past the end of the file")

    def _nbytes(self, t):
        """Bytes of tensor t, or None for a type this reader does not know."""
        if t.ggml_type not in GGML_TYPES:
            return None
        _, blk, bsz = GGML_TYPES[t.ggml_type]
        if t.dims[0] % blk:
            fail(self.path, f"tensor {t.name}", f"first dimension {t.dims[0]} is not a multiple of "
                 f"the block size {blk} of type {GGML_TYPES[t.ggml_type][0]}")
        return math.prod(t.dims) // blk * bsz

    def tensor(self, name):
        """Dequantized tensor as a numpy float32 array of shape reversed(dims)."""
        if name not in self.tensors:
            fail(self.path, f"tensor {name}", "missing")
        t = self.tensors[name]
        if t.ggml_type not in GGML_TYPES:
            fail(self.path, f"tensor {name} type", f"ggml type {t.ggml_type} is not supported "
                 "(supported: F32=0, F16=1, Q8_0=8, BF16=30)")
        tname = GGML_TYPES[t.ggml_type][0]
        start = self.data_start + t.offset
        n = math.prod(t.dims)
        raw = self.buf[start:start + self._nbytes(t)]
        if tname == "F32":
            x = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif tname == "F16":
            x = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif tname == "BF16":
            # bfloat16 = the upper 16 bits of a float32
            x = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:  # Q8_0: blocks of 32 values: float16 scale d, then 32 int8 q; value = d * q
            blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("q", "i1", (32,))]))
            x = (blocks["d"].astype(np.float32)[:, None] * blocks["q"].astype(np.float32)).reshape(n)
        return x.reshape(t.shape)


# ---------------------------------------------------------------------------
# safetensors reader / writer
# ---------------------------------------------------------------------------
# Layout: u64 little-endian N, then N bytes of JSON: {name: {"dtype", "shape",
# "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data
# (offsets relative to the first byte after the JSON), little-endian, row-major.

ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": None, "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """Returns (dict name -> numpy array, metadata dict).  BF16 is widened to float32."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise RefError(f"{path}: cannot read: {e.strerror}")
    if len(buf) < 8:
        fail(path, "header length", "file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        fail(path, "header length", f"{n} bytes of header but the file has {len(buf)} bytes")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        fail(path, "header", f"not valid UTF-8 JSON ({e})")
    if not isinstance(header, dict):
        fail(path, "header", "JSON header is not an object")
    data = buf[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail(path, "__metadata__", "must be an object of string values")
    tensors = {}
    for name, e in header.items():
        if not isinstance(e, dict):
            fail(path, name, "entry is not an object")
        dt = e.get("dtype")
        shape = e.get("shape")
        offs = e.get("data_offsets")
        if dt not in ST_DTYPES:
            fail(path, f"{name}.dtype", f"{dt!r} is not supported (F64, F32, F16, BF16, I64, I32)")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(path, f"{name}.shape", f"{shape!r} is not a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= len(data)):
            fail(path, f"{name}.data_offsets", f"{offs!r} is not [begin, end] inside the "
                 f"{len(data)}-byte data section")
        itemsize = 2 if dt == "BF16" else np.dtype(ST_DTYPES[dt]).itemsize
        if offs[1] - offs[0] != math.prod(shape) * itemsize:
            fail(path, f"{name}.data_offsets", f"{offs[1] - offs[0]} bytes for shape {shape} of {dt}")
        raw = data[offs[0]:offs[1]]
        if dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=ST_DTYPES[dt]).copy()
        tensors[name] = a.reshape(shape)
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> (safetensors dtype string, numpy array).  Keeps the order given."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, (dt, a) in tensors.items():
        if dt not in ST_DTYPES or dt == "BF16":
            raise ValueError(f"write_safetensors: dtype {dt} not supported")
        b = np.ascontiguousarray(a, dtype=ST_DTYPES[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": [int(d) for d in np.shape(a)],
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)   # pad so that the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# The base model, in HF layout
# ---------------------------------------------------------------------------

# HF module name -> GGUF tensor name suffix, and the group (self_attn / mlp)
MODULES = {
    "q_proj": ("self_attn", "attn_q"), "k_proj": ("self_attn", "attn_k"),
    "v_proj": ("self_attn", "attn_v"), "o_proj": ("self_attn", "attn_output"),
    "gate_proj": ("mlp", "ffn_gate"), "up_proj": ("mlp", "ffn_up"), "down_proj": ("mlp", "ffn_down"),
}


class LlamaModel:
    """Hyper-parameters and HF-layout weights (torch tensors in self.dtype).

    self.layers[l][module] is the (out, in) weight W of y = x W^T, with
    module in MODULES; self.layers[l]["attn_norm"/"ffn_norm"] are RMSNorm
    weights.  q_proj / k_proj are already un-permuted to HF row order."""

    def __init__(self, path, dtype=torch.float64):
        g = GGUFFile(path)
        self.path = path
        self.dtype = dtype
        arch = g.kv.get("general.architecture")
        if arch != "llama":
            fail(path, "general.architecture", f"{arch!r} is not supported (need 'llama')")

        def hp(key, kind, default=None):
            if key not in g.kv:
                if default is None:
                    fail(path, key, "missing")
                return default
            v = g.kv[key]
            if kind is int and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                fail(path, key, f"must be a positive integer, got {v!r}")
            if kind is float and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
                fail(path, key, f"must be a positive number, got {v!r}")
            return v

        self.n_embd = hp("llama.embedding_length", int)
        self.n_layer = hp("llama.block_count", int)
        self.n_ff = hp("llama.feed_forward_length", int)
        self.n_head = hp("llama.attention.head_count", int)
        self.n_head_kv = hp("llama.attention.head_count_kv", int, self.n_head)
        self.rms_eps = float(hp("llama.attention.layer_norm_rms_epsilon", float))
        self.rope_base = float(hp("llama.rope.freq_base", float, 10000.0))
        self.head_dim = hp("llama.attention.key_length", int, self.n_embd // self.n_head)
        if "llama.attention.key_length" not in g.kv and self.n_embd % self.n_head:
            fail(path, "llama.attention.head_count", f"{self.n_head} does not divide embedding_length {self.n_embd}")
        if hp("llama.attention.value_length", int, self.head_dim) != self.head_dim:
            fail(path, "llama.attention.value_length", "differs from key_length (not supported)")
        if self.n_head % self.n_head_kv:
            fail(path, "llama.attention.head_count_kv", f"{self.n_head_kv} does not divide head_count {self.n_head}")
        if self.head_dim % 2:
            fail(path, "llama.attention.key_length", f"head size {self.head_dim} is odd (RoPE needs pairs)")
        if hp("llama.rope.dimension_count", int, self.head_dim) != self.head_dim:
            fail(path, "llama.rope.dimension_count", f"{g.kv['llama.rope.dimension_count']} != head size "
                 f"{self.head_dim} (partial RoPE is not supported)")
        scaling = g.kv.get("llama.rope.scaling.type", "none")
        if scaling != "none":
            fail(path, "llama.rope.scaling.type", f"{scaling!r} is not supported")
        if "rope_freqs.weight" in g.tensors:
            fail(path, "tensor rope_freqs.weight", "RoPE frequency factors are not supported")

        def weight(name, shape):
            w = g.tensor(name)
            if w.shape != tuple(shape):
                fail(path, f"tensor {name}", f"shape (row-major) {w.shape} != expected {tuple(shape)} "
                     f"(GGUF dims {g.tensors[name].dims})")
            return w

        emb = g.tensor("token_embd.weight")
        if emb.ndim != 2 or emb.shape[1] != self.n_embd:
            fail(path, "tensor token_embd.weight", f"GGUF dims {g.tensors['token_embd.weight'].dims}, "
                 f"expected (n_embd={self.n_embd}, n_vocab)")
        self.n_vocab = emb.shape[0]
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
        self.tok_embd = t(emb)
        self.out_norm = t(weight("output_norm.weight", (self.n_embd,)))
        self.tied_output = "output.weight" not in g.tensors
        self.output = self.tok_embd if self.tied_output else t(weight("output.weight", (self.n_vocab, self.n_embd)))

        D, F_, H, Hkv, hd = self.n_embd, self.n_ff, self.n_head, self.n_head_kv, self.head_dim
        self.shapes = {  # HF (out, in) of every projection
            "q_proj": (H * hd, D), "k_proj": (Hkv * hd, D), "v_proj": (Hkv * hd, D),
            "o_proj": (D, H * hd), "gate_proj": (F_, D), "up_proj": (F_, D), "down_proj": (D, F_),
        }
        self.layers = []
        for l in range(self.n_layer):
            L = {"attn_norm": t(weight(f"blk.{l}.attn_norm.weight", (D,))),
                 "ffn_norm": t(weight(f"blk.{l}.ffn_norm.weight", (D,)))}
            for mod, (_, gname) in MODULES.items():
                w = weight(f"blk.{l}.{gname}.weight", self.shapes[mod])
                # undo llama.cpp's Q/K row permutation (see hf_to_gguf_rows)
                if mod == "q_proj":
                    w = gguf_to_hf_rows(w, H)
                elif mod == "k_proj":
                    w = gguf_to_hf_rows(w, Hkv)
                L[mod] = t(w)
            self.layers.append(L)

    def hparams(self):
        return {"n_vocab": self.n_vocab, "n_embd": self.n_embd, "n_layer": self.n_layer,
                "n_ff": self.n_ff, "n_head": self.n_head, "n_head_kv": self.n_head_kv,
                "head_dim": self.head_dim, "rms_norm_eps": repr(self.rms_eps),
                "rope_freq_base": repr(self.rope_base), "tied_output": str(self.tied_output).lower()}


def rms_norm(x, w, eps):
    """HF LlamaRMSNorm: w * (x * rsqrt(mean(x^2) + eps)).  (HF upcasts to
    float32 inside; here x is already float32 or float64.)"""
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def rope_cos_sin(T, head_dim, base, dtype):
    """HF LlamaRotaryEmbedding: inv_freq[i] = base^(-2i/hd), angle = pos * inv_freq,
    duplicated over the two halves of the head -> cos, sin of shape (T, hd)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    """HF: (x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope_half(x, cos, sin):
    """HF apply_rotary_pos_emb on (..., T, hd): element i pairs with i + hd/2."""
    return x * cos + rotate_half(x) * sin


def forward(model, tokens, adapter=None, dropout=None):
    """Logits (B, T, V) for tokens (B, T) int64, positions 0..T-1, causal.
    With an adapter, every targeted projection gets PEFT's LoRA term;
    dropout[(layer, module)] (B, T, in), when given, multiplies that LoRA
    term's input (PEFT's lora_dropout in training mode, the mask given)."""
    B, T = tokens.shape
    H, Hkv, hd = model.n_head, model.n_head_kv, model.head_dim
    cos, sin = rope_cos_sin(T, hd, model.rope_base, model.dtype)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)   # True above the diagonal = masked

    def proj(l, mod, x):
        y = x @ model.layers[l][mod].T
        if adapter is not None and (l, mod) in adapter.modules:
            A, Bm, scale = adapter.modules[(l, mod)]
            # PEFT Linear.forward: result + lora_B(lora_A(dropout(x))) * scaling (no dropout at eval)
            if dropout is not None and (l, mod) in dropout:
                x = x * dropout[(l, mod)]
            y = y + ((x @ A.T) @ Bm.T) * scale
        return y

    x = model.tok_embd[tokens]                                    # (B, T, D)
    for l in range(model.n_layer):
        L = model.layers[l]
        # --- self-attention block ---
        h = rms_norm(x, L["attn_norm"], model.rms_eps)
        q = proj(l, "q_proj", h).view(B, T, H, hd).transpose(1, 2)     # (B, H, T, hd)
        k = proj(l, "k_proj", h).view(B, T, Hkv, hd).transpose(1, 2)   # (B, Hkv, T, hd)
        v = proj(l, "v_proj", h).view(B, T, Hkv, hd).transpose(1, 2)
        q = apply_rope_half(q, cos, sin)
        k = apply_rope_half(k, cos, sin)
        # grouped-query attention (HF repeat_kv): query head h uses kv head h // (H / Hkv)
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        # (B, H, T, T) scores with HF's scaling; in place on the fresh matmul result
        # (autograd allows it: bmm's backward needs q and k, not its output)
        scores = (q @ k.transpose(2, 3)).mul_(hd ** -0.5).masked_fill_(causal, float("-inf"))
        att = torch.softmax(scores, dim=-1) @ v                        # (B, H, T, hd)
        att = att.transpose(1, 2).reshape(B, T, H * hd)
        x = x + proj(l, "o_proj", att)
        # --- SwiGLU MLP block ---
        h = rms_norm(x, L["ffn_norm"], model.rms_eps)
        x = x + proj(l, "down_proj", F.silu(proj(l, "gate_proj", h)) * proj(l, "up_proj", h))
    x = rms_norm(x, model.out_norm, model.rms_eps)
    return x @ model.output.T                                      # (B, T, V)


def loss_fn(logits, labels):
    """Mean cross-entropy over the (b, t) with labels != -100 (torch semantics)."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100, reduction="mean")


# ---------------------------------------------------------------------------
# PEFT LoRA adapter
# ---------------------------------------------------------------------------

PEFT_NAME = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\."
                       r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_([AB])\.weight$")


def peft_pattern_key(pattern_keys, key):
    """PEFT get_pattern_key: the first pattern p with re.match(r"(.*\\.)?(p)$", key)."""
    for p in pattern_keys:
        if re.match(rf"(.*\.)?({p})$", key):
            return p
    return key


class Adapter:
    """self.modules[(layer, module)] = (A, B, scaling); A (r, in) and B (out, r)
    are leaf tensors with requires_grad.  self.names[(layer, module)] = (name
    of A, name of B) in adapter_model.safetensors."""

    def __init__(self, adir, model):
        self.dir = adir
        cpath = os.path.join(adir, "adapter_config.json")
        wpath = os.path.join(adir, "adapter_model.safetensors")
        try:
            with open(cpath, "rb") as f:
                cfg = json.loads(f.read().decode("utf-8"))
        except OSError as e:
            raise RefError(f"{cpath}: cannot read: {e.strerror}")
        except (UnicodeDecodeError, ValueError) as e:
            fail(cpath, "JSON", f"not valid JSON ({e})")
        if not isinstance(cfg, dict):
            fail(cpath, "JSON", "not an object")
        self.config = cfg

        def field(key, check, what, default=KeyError):
            if key not in cfg:
                if default is KeyError:
                    fail(cpath, key, "missing")
                return default
            v = cfg[key]
            if not check(v):
                fail(cpath, key, f"{what}, got {v!r}")
            return v

        is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
        field("peft_type", lambda v: v == "LORA", "must be \"LORA\"")
        r = field("r", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "must be a positive integer")
        alpha = field("lora_alpha", is_num, "must be a number")
        field("lora_dropout", lambda v: is_num(v) and 0 <= v < 1, "must be a number in [0, 1)", 0.0)
        rslora = field("use_rslora", lambda v: isinstance(v, bool), "must be true or false", False)
        field("bias", lambda v: v == "none", "only \"none\" is supported", "none")
        field("fan_in_fan_out", lambda v: v is False, "only false is supported", False)
        field("use_dora", lambda v: v is False, "DoRA is not supported", False)
        field("lora_bias", lambda v: v is False, "lora_bias is not supported", False)
        field("modules_to_save", lambda v: not v, "modules_to_save is not supported", None)
        rank_pattern = field("rank_pattern", lambda v: v is None or (isinstance(v, dict) and all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v.values())),
            "must be an object of positive integers", None) or {}
        alpha_pattern = field("alpha_pattern", lambda v: v is None or (isinstance(v, dict) and all(
            is_num(x) for x in v.values())), "must be an object of numbers", None) or {}
        targets = field("target_modules", lambda v: isinstance(v, str) or (
            isinstance(v, list) and all(isinstance(x, str) for x in v)), "must be a string or a list of strings")
        layers_tt = field("layers_to_transform", lambda v: v is None or isinstance(v, int) or (
            isinstance(v, list) and all(isinstance(x, int) for x in v)), "must be null, an integer or a list", None)
        if isinstance(layers_tt, int):
            layers_tt = [layers_tt]
        if isinstance(targets, list):
            bad = [x for x in targets if x not in MODULES]
            if bad:
                fail(cpath, "target_modules", f"{bad} not supported (only {', '.join(MODULES)})")

        def targeted(key, mod, layer):
            """PEFT check_target_module_exists, for the modules this model has."""
            if targets == "all-linear":
                hit = True
            elif isinstance(targets, str):
                hit = re.fullmatch(targets, key) is not None
            else:
                hit = mod in targets
            return hit and (layers_tt is None or layer in layers_tt)

        tensors, _ = read_safetensors(wpath)
        found = {}
        for name in tensors:
            m = PEFT_NAME.match(name)
            if not m:
                fail(wpath, name, "not a PEFT LoRA tensor name of a LLaMA projection "
                     "(base_model.model.model.layers.N.{self_attn|mlp}.MODULE.lora_{A|B}.weight)")
            layer, group, mod, ab = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            if MODULES[mod][0] != group:
                fail(wpath, name, f"{mod} belongs to {MODULES[mod][0]}, not {group}")
            if layer >= model.n_layer:
                fail(wpath, name, f"layer {layer} but the model has {model.n_layer} layers")
            found.setdefault((layer, mod), {})[ab] = name

        self.modules = {}
        self.names = {}
        self.scaling = {}
        for layer in range(model.n_layer):
            for mod, (group, _) in MODULES.items():
                key = f"model.layers.{layer}.{group}.{mod}"     # PEFT's module key in LlamaForCausalLM
                pair = found.get((layer, mod))
                if not targeted(key, mod, layer):
                    if pair:
                        fail(wpath, next(iter(pair.values())), f"module {key} is not in target_modules of {cpath}")
                    continue
                if not pair or set(pair) != {"A", "B"}:
                    fail(wpath, f"base_model.model.{key}.lora_{'A' if not pair or 'A' not in pair else 'B'}.weight",
                         f"missing (module {key} is targeted by {cpath})")
                # PEFT: r and alpha from rank_pattern / alpha_pattern (matched on the module key)
                rk = rank_pattern.get(peft_pattern_key(rank_pattern.keys(), key), r)
                ak = alpha_pattern.get(peft_pattern_key(alpha_pattern.keys(), key), alpha)
                scale = ak / math.sqrt(rk) if rslora else ak / rk
                out_f, in_f = model.shapes[mod]
                a_np, b_np = tensors[pair["A"]], tensors[pair["B"]]
                for n_, x_ in ((pair["A"], a_np), (pair["B"], b_np)):
                    if x_.dtype.kind != "f":
                        fail(wpath, n_, f"dtype {x_.dtype} is not a float type (F32, F16, BF16, F64)")
                if a_np.shape != (rk, in_f):
                    fail(wpath, pair["A"], f"shape {list(a_np.shape)} != (r={rk}, in={in_f})")
                if b_np.shape != (out_f, rk):
                    fail(wpath, pair["B"], f"shape {list(b_np.shape)} != (out={out_f}, r={rk})")
                A = torch.tensor(a_np, dtype=model.dtype, requires_grad=True)
                Bm = torch.tensor(b_np, dtype=model.dtype, requires_grad=True)
                self.modules[(layer, mod)] = (A, Bm, scale)
                self.names[(layer, mod)] = (pair["A"], pair["B"])
                self.scaling[key] = scale
        self.r, self.alpha, self.rslora = r, alpha, rslora

    def named_params(self):
        """(safetensors name, leaf tensor) for every A and B, in a fixed order."""
        for lm, (A, Bm, _) in self.modules.items():
            na, nb = self.names[lm]
            yield na, A
            yield nb, Bm


# ---------------------------------------------------------------------------
# Inputs, outputs, command line
# ---------------------------------------------------------------------------

DROPOUT_NAME = re.compile(r"^dropout\.layers\.(\d+)\.(" + "|".join(MODULES) + r")$")


def read_inputs(path, model, adapter=None):
    """-> (tokens (B, T) int64, labels (B, T) int64 or None, dropout masks
    {(layer, module): (B, T, in) tensor in model.dtype})."""
    n_vocab = model.n_vocab
    tensors, _ = read_safetensors(path)
    extra = sorted(n for n in set(tensors) - {"tokens", "labels"} if not DROPOUT_NAME.match(n))
    if extra:
        fail(path, extra[0], "unexpected tensor (only tokens, labels and dropout.layers.N.MODULE)")
    if "tokens" not in tensors:
        fail(path, "tokens", "missing")
    tok = tensors["tokens"]
    if tok.dtype.kind != "i" or tok.ndim != 2 or tok.shape[0] < 1 or tok.shape[1] < 1:
        fail(path, "tokens", f"must be I32 (or I64) of shape (B, T) with B, T >= 1, got {tok.dtype} {list(tok.shape)}")
    if tok.min() < 0 or tok.max() >= n_vocab:
        fail(path, "tokens", f"ids must be in [0, {n_vocab}), found {tok.min()}..{tok.max()}")
    lab = tensors.get("labels")
    if lab is not None:
        if lab.dtype.kind != "i" or lab.shape != tok.shape:
            fail(path, "labels", f"must be I32 (or I64) of the shape of tokens {list(tok.shape)}, "
                 f"got {lab.dtype} {list(lab.shape)}")
        bad = (lab != -100) & ((lab < 0) | (lab >= n_vocab))
        if bad.any():
            fail(path, "labels", f"ids must be in [0, {n_vocab}) or -100, found {lab[bad][0]}")
        if (lab == -100).all():
            fail(path, "labels", "every label is -100: the mean loss is undefined")
        lab = torch.from_numpy(lab.astype(np.int64))
    masks = {}
    for name in sorted(tensors):
        m = DROPOUT_NAME.match(name)
        if not m:
            continue
        layer, mod = int(m.group(1)), m.group(2)
        if adapter is None or (layer, mod) not in adapter.modules:
            fail(path, name, f"a dropout mask for layer {layer} {mod}, which "
                 + ("no adapter is given for" if adapter is None else "the adapter does not target"))
        x = tensors[name]
        want = (*tok.shape, model.shapes[mod][1])
        if x.dtype.kind != "f" or x.shape != want:
            fail(path, name, f"must be a float tensor of shape (B, T, in) = {list(want)}, "
                 f"got {x.dtype} {list(x.shape)}")
        if not np.isfinite(x).all() or (x < 0).any():
            fail(path, name, "mask values must be finite and >= 0 (0 or 1 / (1 - p))")
        masks[(layer, mod)] = torch.from_numpy(x.astype(np.float64)).to(model.dtype)
    return torch.from_numpy(tok.astype(np.int64)), lab, masks


def run(model_path, adapter_dir, inputs_path, out_path, dtype_name="float64"):
    dtype = {"float64": torch.float64, "float32": torch.float32}[dtype_name]
    model = LlamaModel(model_path, dtype)
    adapter = Adapter(adapter_dir, model) if adapter_dir else None
    tokens, labels, masks = read_inputs(inputs_path, model, adapter)

    logits = forward(model, tokens, adapter, masks)
    out = {"logits": ("F32", logits.detach().float().numpy())}
    meta = {"format": "lgpu lora_ref 1", "model": model_path, "adapter": adapter_dir or "",
            "inputs": inputs_path, "dtype": dtype_name, "batch": tokens.shape[0], "n_tokens": tokens.shape[1]}
    meta.update(model.hparams())
    if adapter is not None:
        meta.update({"lora_r": adapter.r, "lora_alpha": repr(adapter.alpha),
                     "use_rslora": str(adapter.rslora).lower(),
                     "lora_scaling": json.dumps(adapter.scaling), "dropout_masks": len(masks)})
    if labels is not None:
        loss = loss_fn(logits, labels)
        if adapter is not None:
            loss.backward()
        out["loss"] = ("F64", np.array([loss.item()], dtype=np.float64))
        meta["n_loss_tokens"] = int((labels != -100).sum())
        if adapter is not None:
            for name, p in adapter.named_params():
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                out[name + ".grad"] = ("F64", g.detach().double().numpy())
    write_safetensors(out_path, out, meta)
    return logits, out, meta


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch autograd reference for LoRA on GGUF LLaMA models")
    ap.add_argument("--model", required=True, help="base model, GGUF v3")
    ap.add_argument("--adapter", help="PEFT LoRA directory (adapter_config.json, adapter_model.safetensors)")
    ap.add_argument("--inputs", required=True, help="safetensors with tokens I32 (B,T), optional labels I32 (B,T) and "
                    "optional LoRA dropout masks dropout.layers.N.MODULE (B,T,in)")
    ap.add_argument("--out", required=True, help="output safetensors")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    a = ap.parse_args(argv)
    try:
        _, out, meta = run(a.model, a.adapter, a.inputs, a.out, a.dtype)
    except RefError as e:
        print(f"lora_ref.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"lora_ref.py: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    msg = f"lora_ref: B={meta['batch']} T={meta['n_tokens']} V={meta['n_vocab']}"
    if "loss" in out:
        msg += f" loss={out['loss'][1][0]!r} ({meta['n_loss_tokens']} labelled)"
    print(msg + f" -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
