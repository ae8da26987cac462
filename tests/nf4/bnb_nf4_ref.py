#!/usr/bin/python3
"""bitsandbytes' NF4 quantization (QLoRA), written out independently of lgpu.

    /usr/bin/python3 tests/nf4/bnb_nf4_ref.py --write tests/nf4/nf4_fixture.h
    /usr/bin/python3 tests/nf4/bnb_nf4_ref.py --check tests/nf4/nf4_fixture.h

Follows bitsandbytes' own code step by step (bitsandbytes-foundation/
bitsandbytes, bitsandbytes/functional.py and csrc/kernels.cu):

  quantize_4bit(A, blocksize=64, quant_type="nf4", compress_statistics=...)
    - A is flattened; blocks of 64 consecutive values, the last one partial;
    - absmax[b] = max |x| over the block (kQuantizeBlockwiseSmall);
    - each value is scaled by the float reciprocal: x * (1.0f / absmax[b])
      and mapped to a 4-bit index by the decision tree dQuantizeNF4 (its
      thresholds are the midpoints of the code book; "x > t" goes up, so a
      tie goes to the lower index; NaN, the 0 * inf of an all-zero block,
      falls through to index 0);
    - two indices per byte, the FIRST value in the HIGH nibble
      (qvals[j] = q(vals[2j]) << 4 | q(vals[2j+1]));
    - compress_statistics (bnb_4bit_use_double_quant): offset =
      absmax.mean(); quantize_blockwise(absmax - offset, blocksize=256) with
      the signed dynamic map create_dynamic_map(): per 256 absmax values a
      float32 absmax2, each value x * (1.0f / absmax2) mapped to 8 bits by
      dQuantize (the binary search of kernels.cu, ported as written).
  dequantize_4bit
    - absmax = code8[q] * absmax2[b // 256] + offset   (double quant)
    - w = nf4[q] * absmax[b]                            (float32 products)

The NF4 code book is get_4bit_type("nf4") (= create_normal_map(0.9677083)).
create_dynamic_map() is run as written when torch is importable: its
torch.linspace values depend on the PyTorch build (this is bitsandbytes'
behaviour, not ours: the vectorised, fused-multiply-add AVX2 CPU kernel of
PyTorch 1.13 / Debian 12 gives the table below; other builds differ by at most
2 ulp in up to 44 of the 256 entries). Without torch, that AVX2 kernel is
emulated exactly (linspace_avx2 below), and with torch the two are checked
equal.

The inputs are a deterministic function of (seed, index) that the C test
computes too (splitmix64 -> two uniforms in [-1, 1) -> product -> times a
per-block power-of-two-ish scale, all exact float32 operations).

--write emits a C header of expected values (the fixture the C test
tests/test_nf4.c reads); --check regenerates it and compares. Only the
standard library and numpy are needed.
"""

import argparse
import math
import sys
from fractions import Fraction

import numpy as np

f32 = np.float32

# bitsandbytes/functional.py get_4bit_type("nf4") (csrc/kernels.cu
# nf4_dequantization_lut holds the same values)
NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=f32)

# csrc/kernels.cu dQuantizeNF4: the decision tree's thresholds, as float
# literals (rounded to float32 there as here).
T = {k: f32(v) for k, v in {
    "r": 0.03979014977812767, "1": 0.3893125355243683, "11": 0.6427869200706482,
    "111": 0.8614784181118011, "110": 0.5016634166240692, "10": 0.2035212516784668,
    "101": 0.2920137718319893, "100": 0.1202552504837513, "0": -0.33967943489551544,
    "01": -0.13791173323988914, "011": -0.045525018125772476, "010": -0.23460740596055984,
    "00": -0.6106329262256622, "001": -0.4599952697753906, "000": -0.8480964004993439}.items()}


def quantize_nf4_value(x):
    """dQuantizeNF4, branch for branch (x is a float32; NaN compares false)."""
    if x > T["r"]:
        if x > T["1"]:
            if x > T["11"]:
                return 0b1111 if x > T["111"] else 0b1110
            return 0b1101 if x > T["110"] else 0b1100
        if x > T["10"]:
            return 0b1011 if x > T["101"] else 0b1010
        return 0b1001 if x > T["100"] else 0b1000
    if x > T["0"]:
        if x > T["01"]:
            return 0b0111 if x > T["011"] else 0b0110
        return 0b0101 if x > T["010"] else 0b0100
    if x > T["00"]:
        return 0b0011 if x > T["001"] else 0b0010
    return 0b0001 if x > T["000"] else 0b0000


# ---------------------------------------------------------------- dynamic map

def round_f32(q):
    """A Fraction rounded to the nearest float32, ties to even (normal range)."""
    if q == 0:
        return f32(0.0)
    s = -1 if q < 0 else 1
    q = abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    m = q / Fraction(2) ** (e - 23)
    n, r = divmod(m.numerator, m.denominator)
    r = Fraction(r, m.denominator)
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2 == 1):
        n += 1
    return f32(s * float(Fraction(n) * Fraction(2) ** (e - 23)))


def fma32(a, b, c):
    return round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def linspace_avx2(start, end, steps):
    """torch.linspace(start, end, steps, dtype=float32) as PyTorch's AVX2 CPU
    kernel computes it (aten RangeFactoriesKernel.cpp): step = (end -
    start) / (steps - 1) in float; start + step * i below steps / 2, end -
    step * (steps - 1 - i) from there, each a fused multiply-add (GCC
    contracts it in that build); runs of 16 values (two 8-lane vectors) take
    the first value of each vector that way and the others as base + i *
    step."""
    a, b = f32(start), f32(end)
    step = f32((b - a) / f32(steps - 1))
    half = steps // 2
    out = np.zeros(steps, dtype=f32)

    def one(i):
        return fma32(step, f32(i), a) if i < half else fma32(-step, f32(steps - 1 - i), b)

    i = 0
    while i + 16 <= steps:
        for _ in range(2):
            base = one(i)
            for j in range(8):
                out[i + j] = f32(base + f32(f32(j) * step))
            i += 8
    while i < steps:
        out[i] = one(i)
        i += 1
    return out


def create_dynamic_map_np():
    """bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7,
    total_bits=8) with linspace_avx2; float32 arithmetic as torch does it
    (a Python float times a float32 tensor multiplies in float32)."""
    data = []
    for i in range(7):
        boundaries = linspace_avx2(0.1, 1, 2 ** i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / f32(2.0)
        s = f32(10 ** (-6 + i))
        data += list((s * means).astype(f32))
        data += list((-s * means).astype(f32))
    data += [f32(0), f32(1.0)]
    assert len(data) == 256
    return np.sort(np.array(data, dtype=f32))


def create_dynamic_map_torch():
    """bitsandbytes/functional.py create_dynamic_map, as written (defaults)."""
    import torch
    data = []
    max_exponent_bits, total_bits, signed = 7, 8, True
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    assert additional_items == 0
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


def dynamic_map():
    m = create_dynamic_map_np()
    try:
        import torch  # noqa: F401
    except ImportError:
        return m, "emulated (no torch)"
    t = create_dynamic_map_torch()
    if not np.array_equal(t.view(np.uint32), m.view(np.uint32)):
        bad = int(np.sum(t != m))
        print(f"note: this PyTorch build's create_dynamic_map differs from the AVX2 table in {bad} entries;"
              " the fixture keeps the AVX2 table", file=sys.stderr)
        return m, f"emulated AVX2 (local torch differs in {bad} entries)"
    return m, "torch.linspace (equal to the AVX2 emulation)"


def dquantize8(code, x):
    """csrc/kernels.cu dQuantize<0>: the binary search over the sorted 256
    code values as written (pivot 127, steps 64 .. 1), then the nearer of
    the two neighbours by midpoint (ties: "x < midpoint" below, "x >
    midpoint" above, else the pivot)."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = f32(-1.0), f32(1.0)
    val = code[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower = pivot, val
            pivot += i
        else:
            upper_pivot, upper = pivot, val
            pivot -= i
        val = code[pivot]
        i >>= 1
    if upper_pivot == 255:
        upper = code[upper_pivot]
    if lower_pivot == 0:
        lower = code[lower_pivot]
    if x > val:
        midpoint = f32(f32(upper + val) * f32(0.5))
        return upper_pivot if x > midpoint else pivot
    midpoint = f32(f32(lower + val) * f32(0.5))
    return lower_pivot if x < midpoint else pivot


# ---------------------------------------------------------------- algorithm

def quantize_4bit(a):
    """kQuantizeBlockwiseSmall<float, 64, NF4>: (packed bytes, absmax)."""
    n = len(a)
    nb = (n + 63) // 64
    packed = np.zeros((n + 1) // 2, dtype=np.uint8)
    absmax = np.zeros(nb, dtype=f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(nb):
            v = np.zeros(64, dtype=f32)  # the load pads with zeros
            blk = a[64 * b: 64 * b + 64]
            v[:len(blk)] = blk
            am = f32(np.max(np.abs(v)))
            absmax[b] = am
            inv = f32(f32(1.0) / am)
            q = [quantize_nf4_value(f32(x * inv)) for x in v]
            for j in range(32):
                k = 32 * b + j
                if k < len(packed):
                    packed[k] = (q[2 * j] << 4) | q[2 * j + 1]
    return packed, absmax


def quantize_blockwise(a, code, blocksize=256):
    """kQuantizeBlockwise<float, 256, 2, 0, General8bit>: (q, absmax2)."""
    n = len(a)
    ng = (n + blocksize - 1) // blocksize
    q = np.zeros(n, dtype=np.uint8)
    am2 = np.zeros(ng, dtype=f32)
    for g in range(ng):
        v = a[blocksize * g: blocksize * g + blocksize]
        m = f32(np.max(np.abs(v)))
        am2[g] = m
        inv = f32(f32(1.0) / m)
        for j, x in enumerate(v):
            q[blocksize * g + j] = dquantize8(code, f32(x * inv))
    return q, am2


def double_quant(absmax, code):
    """compress_statistics: offset = absmax.mean() (here the exact mean
    rounded once to float32; torch's float32 reduction may differ by an
    ulp), then quantize_blockwise(absmax - offset, blocksize=256)."""
    offset = round_f32(sum(Fraction(float(x)) for x in absmax) / len(absmax))
    q, am2 = quantize_blockwise((absmax - offset).astype(f32), code)
    return q, am2, offset


def dequantize_4bit(packed, n, absmax):
    out = np.zeros(n, dtype=f32)
    for i in range(n):
        byte = packed[i // 2]
        idx = (byte >> 4) if i % 2 == 0 else (byte & 15)
        out[i] = f32(NF4[idx] * absmax[i // 64])
    return out


def dequantize_absmax(q, am2, offset, code):
    """dequantize_blockwise(qabsmax, state2) + offset, in float32."""
    return np.array([f32(f32(code[v] * am2[i // 256]) + offset) for i, v in enumerate(q)], dtype=f32)


# ---------------------------------------------------------------- inputs

M64 = (1 << 64) - 1


def splitmix64(seed, i):
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def uniform(seed, i):
    """A float32 in [-1, 1): 24 random bits, exactly."""
    return f32(((splitmix64(seed, i) >> 40) - (1 << 23)) * 2.0 ** -23)


def block_scale(b):
    return f32(2.0 ** ((b % 7) - 3) * (1 + (b % 3) / 4))


def make_input(n, seed, zero_block):
    """x[i] = u(2i) * u(2i + 1) * scale(i // 64), float32 products; the
    block zero_block (if >= 0) all zeros."""
    x = np.zeros(n, dtype=f32)
    for i in range(n):
        x[i] = f32(f32(uniform(seed, 2 * i) * uniform(seed, 2 * i + 1)) * block_scale(i // 64))
    if zero_block >= 0:
        x[64 * zero_block: 64 * zero_block + 64] = 0
    return x


# ---------------------------------------------------------------- fixture

CASES = [  # name, n, seed, zero block
    ("a", 340, 1, 2),      # 6 blocks, the last of 20 values, block 2 all zeros
    ("b", 11008, 2, -1),   # stories260K's 64 x 172 down projection: 172 blocks, one double-quant group
    ("c", 19210, 3, -1),   # 301 blocks, the last of 10 values: two groups, the second partial
]


def fnv1a(data):
    h = 0xcbf29ce484222325
    for byte in bytes(data):
        h = ((h ^ byte) * 0x100000001b3) & M64
    return h


def bits(a):
    return np.asarray(a, dtype=f32).view(np.uint32)


def c_array(ctype, name, values, fmt, per_line=8):
    lines = []
    vals = [fmt(v) for v in values]
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(vals[i:i + per_line]) + ",")
    return f"static const {ctype} {name}[{len(vals)}] = {{\n" + "\n".join(lines) + "\n};\n"


def fixture():
    code, how = dynamic_map()
    out = ["/* Generated by tests/nf4/bnb_nf4_ref.py --write: bitsandbytes' NF4 and double",
           " * quantization computed independently of lgpu (see the script). Do not edit. */",
           f"/* dynamic map: {how} */", ""]
    out.append(c_array("uint32_t", "fx_nf4_code", bits(NF4), lambda v: f"0x{int(v):08x}u"))
    out.append(c_array("uint32_t", "fx_dq8_code", bits(code), lambda v: f"0x{int(v):08x}u"))
    out.append("typedef struct {\n    const char *name;\n    int64_t n;\n    uint64_t seed;\n    int zero_block;\n"
               "    uint64_t packed_hash;    /* FNV-1a of bitsandbytes' packed indices, (n + 1) / 2 bytes */\n"
               "    uint64_t absmax_hash;    /* of the float32 absmax per block (no double quant) */\n"
               "    uint64_t deq_hash;       /* of dequantize_4bit's float32 values (no double quant) */\n"
               "    uint64_t qabsmax_hash;   /* of the 8-bit absmax codes (double quant) */\n"
               "    uint32_t offset;         /* float32 bits */\n"
               "    int n_groups;\n    uint32_t absmax2[2];     /* float32 bits */\n"
               "    uint64_t deq_dq_hash;    /* of dequantize_4bit's values (double quant) */\n"
               "    uint32_t deq_dq_head[8]; /* its first values, float32 bits */\n} fx_case;\n")
    notes = []
    rows = []
    for name, n, seed, zb in CASES:
        x = make_input(n, seed, zb)
        packed, absmax = quantize_4bit(x)
        q8, am2, offset = double_quant(absmax, code)
        deq = dequantize_4bit(packed, n, absmax)
        am_dq = dequantize_absmax(q8, am2, offset, code)
        deq_dq = dequantize_4bit(packed, n, am_dq)
        # independent cross-checks: nearest code value by argmin (bitsandbytes'
        # torch "default" backend) against the trees
        with np.errstate(divide="ignore", invalid="ignore"):
            nb = len(absmax)
            scaled = np.array([f32(x[i] * f32(f32(1.0) / absmax[i // 64])) for i in range(n)], dtype=f32)
        live = np.isfinite(scaled)
        near4 = np.argmin(np.abs(scaled[live, None].astype(np.float64) - NF4[None, :].astype(np.float64)), axis=1)
        tree4 = np.array([quantize_nf4_value(v) for v in scaled[live]])
        v8 = (absmax - offset).astype(f32)
        sc8 = np.array([f32(v8[i] * f32(f32(1.0) / am2[i // 256])) for i in range(nb)], dtype=f32)
        near8 = np.argmin(np.abs(sc8[:, None].astype(np.float64) - code[None, :].astype(np.float64)), axis=1)
        notes.append(f"/* case {name}: n={n}, {nb} blocks; NF4 tree vs argmin: {int(np.sum(near4 != tree4))} "
                     f"differences; dQuantize vs argmin: {int(np.sum(near8 != q8))}; "
                     f"max |dq absmax - absmax| / absmax = "
                     f"{float(np.max(np.abs(am_dq - absmax) / np.maximum(absmax, 1e-30))):.3g} */")
        if name == "a":  # the small case in full
            out.append(c_array("uint8_t", "fx_a_packed", packed, lambda v: f"0x{int(v):02x}", 16))
            out.append(c_array("uint32_t", "fx_a_absmax", bits(absmax), lambda v: f"0x{int(v):08x}u"))
            out.append(c_array("uint8_t", "fx_a_qabsmax", q8, lambda v: f"{int(v)}", 16))
            out.append(c_array("uint32_t", "fx_a_deq_dq", bits(deq_dq), lambda v: f"0x{int(v):08x}u"))
        a2 = list(bits(am2)) + [0] * (2 - len(am2))
        head = ", ".join(f"0x{int(v):08x}u" for v in bits(deq_dq[:8]))
        rows.append(f"    {{\"{name}\", {n}, {seed}, {zb}, 0x{fnv1a(packed):016x}ull, "
                    f"0x{fnv1a(bits(absmax).tobytes()):016x}ull, 0x{fnv1a(bits(deq).tobytes()):016x}ull, "
                    f"0x{fnv1a(q8.tobytes()):016x}ull, 0x{int(bits([offset])[0]):08x}u, {len(am2)}, "
                    f"{{0x{int(a2[0]):08x}u, 0x{int(a2[1]):08x}u}}, "
                    f"0x{fnv1a(bits(deq_dq).tobytes()):016x}ull, {{{head}}}}},")
    out += notes
    out.append("static const fx_case fx_cases[] = {\n" + "\n".join(rows) + "\n};\n")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="HEADER")
    g.add_argument("--check", metavar="HEADER")
    args = ap.parse_args()
    text = fixture()
    if args.write:
        with open(args.write, "w") as fh:
            fh.write(text)
        print(f"wrote {args.write}")
        return 0
    with open(args.check) as fh:
        old = fh.read()
    # the dynamic-map provenance line may differ between machines; the values may not
    strip = lambda s: "\n".join(l for l in s.splitlines() if not l.startswith("/* dynamic map:"))
    if strip(old) != strip(text):
        print(f"{args.check}: differs from what the reference computes now; regenerate with --write",
              file=sys.stderr)
        return 1
    print(f"{args.check}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
