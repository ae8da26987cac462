#!/usr/bin/python3
"""Self-test of tests/torch/lora_ref.py.  Run: /usr/bin/python3 tests/torch/test_lora_ref.py

Checks (each prints one or more "ok" lines; any failure raises and exits non-zero):
  1. GGUF reader on a file written here: every KV value type (arrays, strings,
     bools, ...), non-default alignment, F32 / F16 / BF16 / Q8_0 dequantization.
  2. hf_to_gguf_rows / gguf_to_hf_rows are inverse permutations with the index
     map llama.cpp's converter defines; q (and q . k) from interleaved-pair RoPE
     on GGUF-layout weights equals rotate_half RoPE on un-permuted weights, also
     with a LoRA delta whose B is converted with hf_to_gguf_rows.
  3. A small random model written as GGUF (GQA, tied output, F16/BF16/Q8_0
     weights): the HF-layout model equals a llama.cpp-style forward that uses the
     GGUF weights as stored with interleaved-pair RoPE.
  4. stories260K.gguf: greedy decoding from BOS (token 1), the whole prefix fed
     at every step, reproduces stories260K.greedy-t0-n256.ids token for token;
     and the llama.cpp-style forward agrees with the HF-layout one.
  5. Random PEFT adapter (written here) with labels, through the command line:
     autograd gradients of A and B entries agree with central finite differences
     of the float64 loss (relative error < 1e-6); rank_pattern / alpha_pattern /
     use_rslora scalings.
  6. An adapter with B = 0 gives exactly the base model's logits and loss.
  7. LoRA dropout masks in the inputs: all ones change no bit, all zeros give
     the base model and zero gradients, random 0 or 1/(1-p) masks give
     gradients that agree with central finite differences; bad masks are
     errors naming the tensor.
  8. Malformed inputs give a non-zero exit status and name the file and field.
"""

import contextlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import lora_ref as R  # noqa: E402

MODELS = os.environ.get("LGPU_MODELS", os.path.join(REPO, "..", "shared", "models"))
SCRIPT = os.path.join(HERE, "lora_ref.py")
PY = sys.executable or "/usr/bin/python3"

torch.set_num_threads(1)   # tiny tensors: threads only add overhead
try:
    # Speed only: keep freed blocks in glibc's heap instead of unmapping them, so the
    # many same-sized (T, T) score tensors of the greedy loop do not fault in fresh
    # pages every step (M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1).
    import ctypes
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(-3, 256 << 20)
    _libc.mallopt(-1, 1 << 30)
except (OSError, AttributeError):
    pass
n_checks = 0


def ok(msg):
    global n_checks
    n_checks += 1
    print(f"ok {n_checks:2d}  {msg}", flush=True)


# ---------------------------------------------------------------------------
# A small GGUF writer (test side only)
# ---------------------------------------------------------------------------

VT = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7,
      "str": 8, "arr": 9, "u64": 10, "i64": 11, "f64": 12}
VFMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vt, v):
    if vt == 8:
        return gguf_str(v)
    if vt == 9:                      # v = (element type name, list)
        et = VT[v[0]]
        return struct.pack("<IQ", et, len(v[1])) + b"".join(gguf_value(et, e) for e in v[1])
    return struct.pack(VFMT[vt], v)


def quant_q8_0(x):
    """ggml quantize_row_q8_0: per 32 values d = amax / 127 (stored as f16), q = round(x / d)."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    d = (np.abs(blocks).max(axis=1) / 127.0).astype(np.float16)
    inv = np.where(d.astype(np.float32) != 0, 1.0 / np.where(d == 0, 1, d.astype(np.float32)), 0.0)
    q = np.clip(np.round(blocks * inv[:, None]), -127, 127).astype(np.int8)
    raw = np.zeros(len(blocks), dtype=np.dtype([("d", "<f2"), ("q", "i1", (32,))]))
    raw["d"], raw["q"] = d, q
    expected = (d.astype(np.float32)[:, None] * q.astype(np.float32)).reshape(x.shape)
    return raw.tobytes(), expected


def encode_tensor(x, tname):
    """-> (ggml type id, raw bytes, the float32 values a correct reader returns)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if tname == "F32":
        return 0, x.tobytes(), x
    if tname == "F16":
        h = x.astype(np.float16)
        return 1, h.tobytes(), h.astype(np.float32)
    if tname == "BF16":   # truncate to the upper 16 bits (any bf16 value will do)
        u = (x.view(np.uint32) >> 16).astype(np.uint16)
        return 30, u.tobytes(), (u.astype(np.uint32) << 16).view(np.float32)
    if tname == "Q8_0":
        raw, exp = quant_q8_0(x)
        return 8, raw, exp
    raise ValueError(tname)


def write_gguf(path, kvs, tensors, alignment=None):
    """kvs: [(key, type name, value)]; tensors: [(name, numpy array, type name)].
    GGUF dims are written fastest-first (the numpy shape reversed).
    Returns {name: expected dequantized float32 array}."""
    if alignment is not None:
        kvs = kvs + [("general.alignment", "u32", alignment)]
    align = alignment or 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        head += gguf_str(k) + struct.pack("<I", VT[t]) + gguf_value(VT[t], v)
    data, expected = b"", {}
    for name, x, tname in tensors:
        tid, raw, exp = encode_tensor(x, tname)
        data += b"\0" * (-len(data) % align)
        head += gguf_str(name) + struct.pack("<I", x.ndim) + b"".join(struct.pack("<Q", d) for d in reversed(x.shape))
        head += struct.pack("<IQ", tid, len(data))
        data += raw
        expected[name] = exp
    head += b"\0" * (-len(head) % align)
    with open(path, "wb") as f:
        f.write(head + data)
    return expected


# ---------------------------------------------------------------------------
# An independent llama.cpp-style forward: GGUF weights as stored (no
# un-permutation), RoPE on interleaved pairs (2i, 2i+1), explicit loops over
# heads.  One sequence, float64.
# ---------------------------------------------------------------------------

def rope_interleaved(x, base, hd):
    """x (T, hd) -> rotated; pair (2i, 2i+1) by angle pos * base^(-2i/hd)."""
    T = x.shape[0]
    y = x.clone()
    for i in range(hd // 2):
        theta = torch.arange(T, dtype=torch.float64) * base ** (-2.0 * i / hd)
        c, s = torch.cos(theta), torch.sin(theta)
        y[:, 2 * i] = x[:, 2 * i] * c - x[:, 2 * i + 1] * s
        y[:, 2 * i + 1] = x[:, 2 * i] * s + x[:, 2 * i + 1] * c
    return y


def forward_gguf_native(path, tokens):
    g = R.GGUFFile(path)
    kv = g.kv
    D = kv["llama.embedding_length"]
    H = kv["llama.attention.head_count"]
    Hkv = kv.get("llama.attention.head_count_kv", H)
    hd = D // H
    eps = kv["llama.attention.layer_norm_rms_epsilon"]
    base = kv.get("llama.rope.freq_base", 10000.0)
    W = lambda n: torch.from_numpy(g.tensor(n)).double()
    norm = lambda x, w: x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w
    T = len(tokens)
    x = W("token_embd.weight")[torch.tensor(tokens)]
    for l in range(kv["llama.block_count"]):
        p = f"blk.{l}."
        h = norm(x, W(p + "attn_norm.weight"))
        q, k, v = h @ W(p + "attn_q.weight").T, h @ W(p + "attn_k.weight").T, h @ W(p + "attn_v.weight").T
        heads = []
        for hh in range(H):
            j = hh // (H // Hkv)                      # kv head of query head hh
            qh = rope_interleaved(q[:, hh * hd:(hh + 1) * hd], base, hd)
            kh = rope_interleaved(k[:, j * hd:(j + 1) * hd], base, hd)
            s = qh @ kh.T / math.sqrt(hd)
            s = s + torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1)
            heads.append(torch.softmax(s, -1) @ v[:, j * hd:(j + 1) * hd])
        x = x + torch.cat(heads, 1) @ W(p + "attn_output.weight").T
        h = norm(x, W(p + "ffn_norm.weight"))
        gate = h @ W(p + "ffn_gate.weight").T
        x = x + (gate * torch.sigmoid(gate) * (h @ W(p + "ffn_up.weight").T)) @ W(p + "ffn_down.weight").T
    x = norm(x, W("output_norm.weight"))
    out = W("output.weight") if "output.weight" in g.tensors else W("token_embd.weight")
    return x @ out.T


# ---------------------------------------------------------------------------
# 1. GGUF reader
# ---------------------------------------------------------------------------

def test_gguf_reader(tmp):
    rng = np.random.default_rng(1)
    kvs = [("general.architecture", "str", "llama"), ("t.u8", "u8", 200), ("t.i8", "i8", -100),
           ("t.u16", "u16", 60000), ("t.i16", "i16", -30000), ("t.u32", "u32", 4000000000),
           ("t.i32", "i32", -2000000000), ("t.f32", "f32", 0.25), ("t.bool", "bool", True),
           ("t.str", "str", "héllo ▁"), ("t.u64", "u64", 2 ** 63 + 5), ("t.i64", "i64", -2 ** 62),
           ("t.f64", "f64", math.pi), ("t.arr_str", "arr", ("str", ["a", "", "▁b"])),
           ("t.arr_f32", "arr", ("f32", [1.5, -2.0])), ("t.arr_bool", "arr", ("bool", [True, False])),
           ("t.arr_arr", "arr", ("arr", [("i32", [1, 2]), ("str", ["x"])])), ("t.arr_empty", "arr", ("i64", []))]
    x = rng.standard_normal((3, 64)).astype(np.float32) * 3
    tensors = [("a.f32", x, "F32"), ("a.f16", x, "F16"), ("a.bf16", x, "BF16"), ("a.q8_0", x, "Q8_0"),
               ("a.vec", x[0, :5], "F32")]
    path = os.path.join(tmp, "kv.gguf")
    exp = write_gguf(path, kvs, tensors, alignment=64)
    g = R.GGUFFile(path)
    want = {k: v for k, _, v in kvs}
    want["t.f32"], want["general.alignment"] = 0.25, 64
    want["t.arr_arr"] = [[1, 2], ["x"]]
    want["t.arr_str"], want["t.arr_f32"], want["t.arr_bool"], want["t.arr_empty"] = \
        ["a", "", "▁b"], [1.5, -2.0], [True, False], []
    assert g.kv == want, (g.kv, want)
    assert g.alignment == 64 and g.data_start % 64 == 0
    ok(f"GGUF reader: {len(kvs)} KV pairs of every value type (nested arrays, UTF-8 strings) read back; alignment 64")
    for name, x_, tname in tensors:
        got = g.tensor(name)
        assert got.shape == x_.shape and g.tensors[name].dims == list(reversed(x_.shape)), (name, got.shape)
        assert np.array_equal(got, exp[name]), name
    # Q8_0 by hand for one block: value = f16 scale * int8
    blk = np.frombuffer(g.buf[g.data_start + g.tensors["a.q8_0"].offset:][:34], dtype=np.uint8)
    d = np.frombuffer(blk[:2].tobytes(), "<f2")[0]
    q = blk[2:].view(np.int8)
    assert np.array_equal(g.tensor("a.q8_0")[0, :32], np.float32(d) * q.astype(np.float32))
    err = np.abs(g.tensor("a.q8_0") - x).max()
    ok(f"GGUF tensors: F32, F16, BF16, Q8_0 (d*q per 32-block, max |err| vs source {err:.3g}) dequantized "
       f"exactly; dims fastest-first -> numpy shape reversed")


# ---------------------------------------------------------------------------
# 2. Q/K permutation
# ---------------------------------------------------------------------------

def test_permutation():
    torch.manual_seed(2)
    for H, hd, cols in ((4, 8, 16), (2, 6, 3), (1, 2, 5)):
        W = torch.randn(H * hd, cols, dtype=torch.float64)
        P = R.hf_to_gguf_rows(W, H)
        assert torch.equal(R.gguf_to_hf_rows(P, H), W) and torch.equal(R.hf_to_gguf_rows(R.gguf_to_hf_rows(W, H), H), W)
        # explicit index map: GGUF row h*hd + 2i + a = HF row h*hd + a*hd/2 + i
        for h in range(H):
            for i in range(hd // 2):
                for a in range(2):
                    assert torch.equal(P[h * hd + 2 * i + a], W[h * hd + a * hd // 2 + i])
        Wn = W.numpy()
        assert np.array_equal(R.gguf_to_hf_rows(R.hf_to_gguf_rows(Wn, H), H), Wn)
    ok("permutation: gguf_to_hf_rows(hf_to_gguf_rows(W)) == W and vice versa (torch and numpy); "
       "GGUF row h*hd+2i+a = HF row h*hd+a*hd/2+i")

    # a random layer: HF weights, their GGUF form, q and k with each RoPE convention
    H, Hkv, hd, D, T, r = 4, 2, 8, 16, 7, 3
    Wq, Wk = torch.randn(H * hd, D, dtype=torch.float64), torch.randn(Hkv * hd, D, dtype=torch.float64)
    A, Bq = torch.randn(r, D, dtype=torch.float64), torch.randn(H * hd, r, dtype=torch.float64)
    x = torch.randn(T, D, dtype=torch.float64)
    cos, sin = R.rope_cos_sin(T, hd, 10000.0, torch.float64)
    for label, wq_hf, wq_gguf in (
            ("q", Wq, R.hf_to_gguf_rows(Wq, H)),
            # LoRA: W + s B A in HF layout vs GGUF weight + s (hf_to_gguf_rows(B)) A
            ("q with LoRA delta", Wq + 0.5 * Bq @ A, R.hf_to_gguf_rows(Wq, H) + 0.5 * R.hf_to_gguf_rows(Bq, H) @ A)):
        q_h = R.apply_rope_half((x @ wq_hf.T).view(T, H, hd).transpose(0, 1), cos, sin)        # (H, T, hd)
        qg = x @ wq_gguf.T
        q_g = torch.stack([rope_interleaved(qg[:, h * hd:(h + 1) * hd], 10000.0, hd) for h in range(H)])
        # same numbers, GGUF order inside each head
        q_h_as_gguf = R.hf_to_gguf_rows(q_h.transpose(0, 1).reshape(T, H * hd).T, H).T.reshape(T, H, hd).transpose(0, 1)
        err = (q_h_as_gguf - q_g).abs().max().item()
        assert err < 1e-12, err
        ok(f"permutation: {label}: interleaved-pair RoPE on GGUF-layout weights == rotate_half RoPE on "
           f"un-permuted weights (max |diff| {err:.1e})")
    # attention scores q . k are layout independent
    k_h = R.apply_rope_half((x @ Wk.T).view(T, Hkv, hd).transpose(0, 1), cos, sin)
    kg = x @ R.hf_to_gguf_rows(Wk, Hkv).T
    k_g = torch.stack([rope_interleaved(kg[:, j * hd:(j + 1) * hd], 10000.0, hd) for j in range(Hkv)])
    q_h = R.apply_rope_half((x @ Wq.T).view(T, H, hd).transpose(0, 1), cos, sin)
    qg = x @ R.hf_to_gguf_rows(Wq, H).T
    q_g = torch.stack([rope_interleaved(qg[:, h * hd:(h + 1) * hd], 10000.0, hd) for h in range(H)])
    rep = H // Hkv
    s_h = torch.stack([q_h[h] @ k_h[h // rep].T for h in range(H)])
    s_g = torch.stack([q_g[h] @ k_g[h // rep].T for h in range(H)])
    err = (s_h - s_g).abs().max().item()
    assert err < 1e-12, err
    ok(f"permutation: GQA scores q.k equal in both layouts (n_head 4, n_head_kv 2; max |diff| {err:.1e})")


# ---------------------------------------------------------------------------
# 3. random small model, quantized, GQA, tied output
# ---------------------------------------------------------------------------

def write_random_model(path, seed=3):
    rng = np.random.default_rng(seed)
    D, H, Hkv, Fm, L, V = 32, 4, 2, 64, 2, 40
    hd = D // H
    kvs = [("general.architecture", "str", "llama"), ("general.name", "str", "random"),
           ("llama.embedding_length", "u32", D), ("llama.block_count", "u32", L),
           ("llama.feed_forward_length", "u32", Fm), ("llama.attention.head_count", "u32", H),
           ("llama.attention.head_count_kv", "u32", Hkv), ("llama.rope.dimension_count", "u32", hd),
           ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5), ("llama.rope.freq_base", "f32", 5000.0),
           ("tokenizer.ggml.tokens", "arr", ("str", [f"t{i}" for i in range(V)]))]
    w = lambda *s: (rng.standard_normal(s) / math.sqrt(s[-1])).astype(np.float32)
    hf = {}   # the HF-layout matrices (before the GGUF permutation)
    tensors = [("token_embd.weight", w(V, D), "Q8_0"), ("output_norm.weight", 1 + 0.1 * w(D), "F32")]
    types = {"q_proj": "F16", "k_proj": "BF16", "v_proj": "Q8_0", "o_proj": "F16",
             "gate_proj": "Q8_0", "up_proj": "BF16", "down_proj": "F32"}
    shapes = {"q_proj": (H * hd, D), "k_proj": (Hkv * hd, D), "v_proj": (Hkv * hd, D), "o_proj": (D, H * hd),
              "gate_proj": (Fm, D), "up_proj": (Fm, D), "down_proj": (D, Fm)}
    for l in range(L):
        tensors += [(f"blk.{l}.attn_norm.weight", 1 + 0.1 * w(D), "F32"),
                    (f"blk.{l}.ffn_norm.weight", 1 + 0.1 * w(D), "F16")]
        for mod, (_, gname) in R.MODULES.items():
            m = w(*shapes[mod])
            hf[(l, mod)] = m
            if mod == "q_proj":
                m = R.hf_to_gguf_rows(m, H)
            elif mod == "k_proj":
                m = R.hf_to_gguf_rows(m, Hkv)
            tensors.append((f"blk.{l}.{gname}.weight", m, types[mod]))
    exp = write_gguf(path, kvs, tensors)
    return hf, exp


def test_random_model(tmp):
    path = os.path.join(tmp, "random.gguf")
    hf, exp = write_random_model(path)
    m = R.LlamaModel(path, torch.float64)
    assert m.tied_output and m.output is m.tok_embd and (m.n_head, m.n_head_kv, m.head_dim) == (4, 2, 8)
    assert m.rope_base == 5000.0
    # the un-permuted q / k are the HF matrices we started from (up to the storage type's rounding,
    # which commutes with a row permutation): compare with the expected dequantized GGUF data, un-permuted
    for l in range(2):
        assert torch.equal(m.layers[l]["q_proj"], torch.from_numpy(R.gguf_to_hf_rows(exp[f"blk.{l}.attn_q.weight"], 4)).double())
        assert torch.equal(m.layers[l]["k_proj"], torch.from_numpy(R.gguf_to_hf_rows(exp[f"blk.{l}.attn_k.weight"], 2)).double())
        assert np.abs(m.layers[l]["q_proj"].numpy() - hf[(l, "q_proj")]).max() < 1e-2
    tokens = [1, 5, 39, 0, 7, 7, 22, 13, 3]
    a = R.forward(m, torch.tensor([tokens]))[0]
    b = forward_gguf_native(path, tokens)
    err = (a - b).abs().max().item()
    assert err < 1e-10, err
    ok(f"random GGUF model (GQA 4/2 heads, tied output, Q8_0/F16/BF16/F32 weights, freq_base 5000): "
       f"HF-layout forward == llama.cpp-style forward on stored weights (max |diff| {err:.1e})")
    return path


# ---------------------------------------------------------------------------
# 4. stories260K greedy decoding
# ---------------------------------------------------------------------------

def test_stories260k():
    gguf = os.path.join(MODELS, "stories260K.gguf")
    ids_path = os.path.join(MODELS, "stories260K.greedy-t0-n256.ids")
    if not os.path.exists(gguf) or not os.path.exists(ids_path):
        raise SystemExit(f"FAIL: {gguf} / {ids_path} not found (set LGPU_MODELS to the shared/models directory)")
    want = [int(t) for t in open(ids_path).read().split()]
    assert len(want) == 256 and want[0] == 403
    m = R.LlamaModel(gguf, torch.float64)
    t0 = time.time()
    ids = [1]
    with torch.no_grad():
        for step in range(256):
            logits = R.forward(m, torch.tensor([ids]))       # the whole prefix, every step
            nxt = int(logits[0, -1].argmax())
            if nxt != want[step]:
                raise AssertionError(f"greedy step {step}: got {nxt}, want {want[step]} (prefix {ids[:12]}...)")
            ids.append(nxt)
    ok(f"stories260K.gguf (dim {m.n_embd}, {m.n_layer} layers, {m.n_head}/{m.n_head_kv} heads, vocab {m.n_vocab}): "
       f"greedy from BOS, 256 steps, whole prefix each step, float64 == stories260K.greedy-t0-n256.ids "
       f"({time.time() - t0:.1f} s)")
    seq = ids[:64]
    with torch.no_grad():
        a = R.forward(m, torch.tensor([seq]))[0]
    b = forward_gguf_native(gguf, seq)
    err = (a - b).abs().max().item()
    assert err < 1e-9, err
    ok(f"stories260K.gguf: HF-layout forward == llama.cpp-style forward (stored q/k, interleaved RoPE) "
       f"on 64 tokens (max |logit diff| {err:.1e})")
    return gguf


# ---------------------------------------------------------------------------
# 5./6. adapters through the command line
# ---------------------------------------------------------------------------

def write_adapter(adir, model, r, alpha, rng, b_zero=False, config_extra=None, modules=None):
    """A PEFT LoRA directory for `model`; returns {name: numpy array}."""
    os.makedirs(adir, exist_ok=True)
    modules = modules or list(R.MODULES)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.05,
           "target_modules": modules, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
           "base_model_name_or_path": "test", "inference_mode": True, "rank_pattern": {}, "alpha_pattern": {}}
    cfg.update(config_extra or {})
    tensors = {}
    for l in range(model.n_layer):
        for mod in modules:
            group = R.MODULES[mod][0]
            key = f"model.layers.{l}.{group}.{mod}"
            rk = cfg["rank_pattern"].get(R.peft_pattern_key(cfg["rank_pattern"], key), r)
            out_f, in_f = model.shapes[mod]
            a = rng.standard_normal((rk, in_f)) * 0.1
            b = np.zeros((out_f, rk)) if b_zero else rng.standard_normal((out_f, rk)) * 0.1
            tensors[f"base_model.model.{key}.lora_A.weight"] = ("F32", a.astype(np.float32))
            tensors[f"base_model.model.{key}.lora_B.weight"] = ("F32", b.astype(np.float32))
    with open(os.path.join(adir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    R.write_safetensors(os.path.join(adir, "adapter_model.safetensors"), tensors)
    return {k: v[1] for k, v in tensors.items()}


def run_main(args):
    """lora_ref.main in-process; returns (exit status, stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = R.main(args)
    return rc, err.getvalue()


def test_adapters(tmp, gguf):
    rng = np.random.default_rng(5)
    model = R.LlamaModel(gguf, torch.float64)
    Bn, T = 2, 12
    tokens = rng.integers(0, model.n_vocab, (Bn, T)).astype(np.int32)
    labels = rng.integers(0, model.n_vocab, (Bn, T)).astype(np.int32)
    labels[0, :3] = -100
    labels[1, 7] = -100
    inputs = os.path.join(tmp, "in.safetensors")
    R.write_safetensors(inputs, {"tokens": ("I32", tokens), "labels": ("I32", labels)})

    # --- random adapter with per-module rank / alpha, through the real command line ---
    extra = {"rank_pattern": {"down_proj": 2}, "alpha_pattern": {"model.layers.1.mlp.up_proj": 3}}
    adir = os.path.join(tmp, "adapter")
    ad = write_adapter(adir, model, r=4, alpha=8, rng=rng, config_extra=extra)
    out = os.path.join(tmp, "out.safetensors")
    p = subprocess.run([PY, SCRIPT, "--model", gguf, "--adapter", adir, "--inputs", inputs, "--out", out],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    res, meta = R.read_safetensors(out)
    assert res["logits"].dtype == np.float32 and res["logits"].shape == (Bn, T, model.n_vocab)
    assert res["loss"].dtype == np.float64 and res["loss"].shape == (1,)
    assert set(res) == {"logits", "loss"} | {n + ".grad" for n in ad}
    assert all(res[n + ".grad"].dtype == np.float64 and res[n + ".grad"].shape == ad[n].shape for n in ad)
    assert meta["n_loss_tokens"] == str(int((labels != -100).sum())) and meta["n_layer"] == "5"
    sc = json.loads(meta["lora_scaling"])
    assert sc["model.layers.0.self_attn.q_proj"] == 2.0 and sc["model.layers.3.mlp.down_proj"] == 4.0
    assert sc["model.layers.1.mlp.up_proj"] == 0.75 and sc["model.layers.0.mlp.up_proj"] == 2.0
    ok(f"CLI: {p.stdout.strip()}")
    ok(f"output file: logits F32 {list(res['logits'].shape)}, loss F64 [1], {len(ad)} NAME.grad F64; "
       f"scaling alpha/r = 2, rank_pattern down_proj r=2 -> 4, alpha_pattern layers.1 up_proj -> 0.75")

    # in-process loss as a function of the adapter, for finite differences
    adapter = R.Adapter(adir, model)
    tok_t, lab_t = torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(labels.astype(np.int64))
    params = dict(adapter.named_params())

    def loss_now():
        with torch.no_grad():
            return R.loss_fn(R.forward(model, tok_t, adapter), lab_t).item()

    loss0 = loss_now()
    assert abs(loss0 - res["loss"][0]) < 1e-12 * abs(loss0), (loss0, res["loss"][0])
    h = 1e-5
    checked = []
    for name in ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                 "base_model.model.model.layers.2.self_attn.k_proj.lora_B.weight",
                 "base_model.model.model.layers.3.mlp.down_proj.lora_A.weight",
                 "base_model.model.model.layers.4.mlp.gate_proj.lora_B.weight"):
        g = res[name + ".grad"]
        idx = np.unravel_index(np.abs(g).argmax(), g.shape)          # the largest entry
        P = params[name]
        with torch.no_grad():
            orig = P[idx].item()
            P[idx] = orig + h
            lp = loss_now()
            P[idx] = orig - h
            lm = loss_now()
            P[idx] = orig
        fd = (lp - lm) / (2 * h)
        rel = abs(fd - g[idx]) / abs(g[idx])
        assert rel < 1e-6, (name, idx, fd, g[idx], rel)
        checked.append(f"{name.split('layers.')[1].replace('.weight', '')}{list(idx)}: {g[idx]:+.6e} (rel {rel:.1e})")
    ok("gradients vs central finite differences (float64, h=1e-5), loss "
       f"{loss0:.6f}:\n        " + "\n        ".join(checked))

    # rslora: scaling alpha / sqrt(r)
    with open(os.path.join(adir, "adapter_config.json")) as f:
        cfg = json.load(f)
    cfg["use_rslora"] = True
    rs_dir = os.path.join(tmp, "adapter_rs")
    os.makedirs(rs_dir)
    with open(os.path.join(rs_dir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f)
    os.link(os.path.join(adir, "adapter_model.safetensors"), os.path.join(rs_dir, "adapter_model.safetensors"))
    rs = R.Adapter(rs_dir, model)
    assert rs.scaling["model.layers.0.self_attn.q_proj"] == 8 / math.sqrt(4)
    assert rs.scaling["model.layers.2.mlp.down_proj"] == 8 / math.sqrt(2)
    assert rs.scaling["model.layers.1.mlp.up_proj"] == 3 / math.sqrt(4)
    ok("use_rslora: scaling alpha/sqrt(r) with rank_pattern / alpha_pattern")

    # --- B = 0 adapter: exactly the base model ---
    zdir = os.path.join(tmp, "adapter_zero")
    write_adapter(zdir, model, r=3, alpha=16, rng=rng, b_zero=True, modules=["q_proj", "v_proj", "down_proj"])
    base_out, zero_out = os.path.join(tmp, "base.safetensors"), os.path.join(tmp, "zero.safetensors")
    rc, err = run_main(["--model", gguf, "--inputs", inputs, "--out", base_out])
    assert rc == 0, err
    rc, err = run_main(["--model", gguf, "--adapter", zdir, "--inputs", inputs, "--out", zero_out])
    assert rc == 0, err
    b_res, b_meta = R.read_safetensors(base_out)
    z_res, _ = R.read_safetensors(zero_out)
    assert set(b_res) == {"logits", "loss"} and "lora_r" not in b_meta
    assert np.array_equal(b_res["logits"], z_res["logits"]) and np.array_equal(b_res["loss"], z_res["loss"])
    with torch.no_grad():
        za = R.Adapter(zdir, model)
        assert torch.equal(R.forward(model, tok_t, za), R.forward(model, tok_t))
    assert all(not z_res[n].any() for n in z_res if n.endswith("lora_A.weight.grad"))
    assert any(z_res[n].any() for n in z_res if n.endswith("lora_B.weight.grad"))
    ok("B = 0 adapter (q/v/down_proj): logits and loss bit-identical to the base model (file and float64 "
       "in-process); dA = 0, dB != 0")

    # float32 mode runs and is close to float64
    f32_out = os.path.join(tmp, "f32.safetensors")
    rc, err = run_main(["--model", gguf, "--adapter", adir, "--inputs", inputs, "--out", f32_out, "--dtype", "float32"])
    assert rc == 0, err
    f_res, f_meta = R.read_safetensors(f32_out)
    assert f_meta["dtype"] == "float32"
    d_loss = abs(f_res["loss"][0] - res["loss"][0])
    assert d_loss < 1e-4, d_loss
    ok(f"--dtype float32: loss within {d_loss:.1e} of float64")
    return inputs, adir


# ---------------------------------------------------------------------------
# 7. LoRA dropout masks
# ---------------------------------------------------------------------------

def test_dropout_masks(tmp, gguf, inputs, adir):
    model = R.LlamaModel(gguf, torch.float64)
    ins, _ = R.read_safetensors(inputs)
    Bn, T = ins["tokens"].shape
    base = {"tokens": ("I32", ins["tokens"]), "labels": ("I32", ins["labels"])}
    plain_out = os.path.join(tmp, "plain.safetensors")
    rc, err = run_main(["--model", gguf, "--adapter", adir, "--inputs", inputs, "--out", plain_out])
    assert rc == 0, err
    plain, _ = R.read_safetensors(plain_out)

    def run_with(tag, masks):
        path, out = os.path.join(tmp, f"in_{tag}.safetensors"), os.path.join(tmp, f"out_{tag}.safetensors")
        R.write_safetensors(path, {**base, **{f"dropout.layers.{l}.{m}": ("F32", v) for (l, m), v in masks.items()}})
        rc, err = run_main(["--model", gguf, "--adapter", adir, "--inputs", path, "--out", out])
        assert rc == 0, err
        res, meta = R.read_safetensors(out)
        assert meta["dropout_masks"] == str(len(masks))
        return path, res

    every = [(l, m) for l in range(model.n_layer) for m in R.MODULES]
    shape = lambda m: (Bn, T, model.shapes[m][1])
    _, ones = run_with("ones", {k: np.ones(shape(k[1]), np.float32) for k in every})
    assert all(np.array_equal(ones[n], plain[n]) for n in plain)
    _, zeros = run_with("zeros", {k: np.zeros(shape(k[1]), np.float32) for k in every})
    base_out = os.path.join(tmp, "base_only.safetensors")
    rc, err = run_main(["--model", gguf, "--inputs", inputs, "--out", base_out])
    assert rc == 0, err
    b_res, _ = R.read_safetensors(base_out)
    assert np.array_equal(zeros["loss"], b_res["loss"]) and np.array_equal(zeros["logits"], b_res["logits"])
    assert not any(zeros[n].any() for n in zeros if n.endswith(".grad"))
    ok("dropout masks: all ones change no bit; all zeros give the base model's logits and loss, and zero gradients")

    # random masks (p = 0.3) on every module: autograd against central differences
    rng = np.random.default_rng(9)
    p = 0.3
    masks = {k: ((rng.random(shape(k[1])) >= p) / (1 - p)).astype(np.float32) for k in every}
    path, res = run_with("random", masks)
    assert abs(res["loss"][0] - plain["loss"][0]) > 1e-6     # the masks matter
    adapter = R.Adapter(adir, model)
    tok, lab, mk = R.read_inputs(path, model, adapter)
    assert len(mk) == len(every)
    params = dict(adapter.named_params())

    def loss_now():
        with torch.no_grad():
            return R.loss_fn(R.forward(model, tok, adapter, mk), lab).item()

    assert abs(loss_now() - res["loss"][0]) < 1e-12 * abs(res["loss"][0])
    h = 1e-5
    for name in ("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
                 "base_model.model.model.layers.4.mlp.down_proj.lora_A.weight",
                 "base_model.model.model.layers.2.mlp.up_proj.lora_B.weight"):
        g = res[name + ".grad"]
        idx = np.unravel_index(np.abs(g).argmax(), g.shape)
        P = params[name]
        with torch.no_grad():
            orig = P[idx].item()
            P[idx] = orig + h
            lp = loss_now()
            P[idx] = orig - h
            lm = loss_now()
            P[idx] = orig
        fd = (lp - lm) / (2 * h)
        assert abs(fd - g[idx]) < 1e-6 * abs(g[idx]), (name, idx, fd, g[idx])
    ok(f"dropout masks p={p} on all {len(every)} modules: loss {res['loss'][0]:.6f} (without {plain['loss'][0]:.6f}), "
       "gradients agree with central finite differences (rel < 1e-6)")

    # bad masks: another shape, a module the adapter does not target, a negative value
    out = os.path.join(tmp, "err.safetensors")
    for tag, name, value, needle in (
            ("shape", "dropout.layers.0.q_proj", np.ones((Bn, T, 3), np.float32), "shape"),
            ("layer", "dropout.layers.9.q_proj", np.ones(shape("q_proj"), np.float32), "does not target"),
            ("neg", "dropout.layers.0.up_proj", -np.ones(shape("up_proj"), np.float32), ">= 0")):
        bad = os.path.join(tmp, f"bad_mask_{tag}.safetensors")
        R.write_safetensors(bad, {**base, name: ("F32", value)})
        rc, err = run_main(["--model", gguf, "--adapter", adir, "--inputs", bad, "--out", out])
        assert rc != 0 and bad in err and name in err and needle in err, (tag, rc, err)
    ok("bad dropout masks (shape, untargeted module, negative) -> exit 1 naming the tensor")


# ---------------------------------------------------------------------------
# 8. malformed inputs
# ---------------------------------------------------------------------------

def test_errors(tmp, gguf, inputs, adir):
    out = os.path.join(tmp, "err.safetensors")
    cases = []
    # truncated GGUF
    bad = os.path.join(tmp, "trunc.gguf")
    with open(gguf, "rb") as f:
        open(bad, "wb").write(f.read()[:5000])
    cases.append(("truncated GGUF", ["--model", bad, "--inputs", inputs], [bad, "truncated"]))
    # not GGUF
    cases.append(("inputs file as GGUF", ["--model", inputs, "--inputs", inputs], [inputs, "magic"]))
    # adapter config field
    def bad_adapter(tag, change, remove_tensor=None):
        d = os.path.join(tmp, "bad_" + tag)
        os.makedirs(d)
        cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
        cfg.update(change)
        json.dump(cfg, open(os.path.join(d, "adapter_config.json"), "w"))
        t, _ = R.read_safetensors(os.path.join(adir, "adapter_model.safetensors"))
        t = {k: ("F32", v) for k, v in t.items() if k != remove_tensor}
        R.write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        return d
    d = bad_adapter("bias", {"bias": "all"})
    cases.append(("adapter bias", ["--model", gguf, "--adapter", d, "--inputs", inputs],
                  [os.path.join(d, "adapter_config.json"), "bias"]))
    d = bad_adapter("rank", {"rank_pattern": {}})
    cases.append(("adapter rank mismatch", ["--model", gguf, "--adapter", d, "--inputs", inputs],
                  [os.path.join(d, "adapter_model.safetensors"), "down_proj.lora_A.weight", "shape"]))
    name = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"
    d = bad_adapter("missing", {}, remove_tensor=name)
    cases.append(("adapter tensor missing", ["--model", gguf, "--adapter", d, "--inputs", inputs],
                  [os.path.join(d, "adapter_model.safetensors"), name, "missing"]))
    # bad token id
    bin_ = os.path.join(tmp, "badin.safetensors")
    R.write_safetensors(bin_, {"tokens": ("I32", np.array([[1, 2, 9999]], dtype=np.int32))})
    cases.append(("token out of range", ["--model", gguf, "--inputs", bin_], [bin_, "tokens"]))
    # safetensors with a broken header
    bh = os.path.join(tmp, "badheader.safetensors")
    open(bh, "wb").write(struct.pack("<Q", 10) + b"{not json}")
    cases.append(("bad safetensors header", ["--model", gguf, "--inputs", bh], [bh, "header"]))
    for what, args, needles in cases:
        rc, err = run_main(args + ["--out", out])
        assert rc != 0 and all(n in err for n in needles), (what, rc, err)
    ok("errors: " + "; ".join(c[0] for c in cases) + " -> exit 1, message names file and field, e.g.\n        "
       + run_main(cases[3][1] + ["--out", out])[1].strip())


def main():
    t0, c0 = time.time(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        test_gguf_reader(tmp)
        test_permutation()
        test_random_model(tmp)
        gguf = test_stories260k()
        inputs, adir = test_adapters(tmp, gguf)
        test_dropout_masks(tmp, gguf, inputs, adir)
        test_errors(tmp, gguf, inputs, adir)
    print(f"all {n_checks} checks passed ({time.time() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU "
          "in this process)")


if __name__ == "__main__":
    main()
