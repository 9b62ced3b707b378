#!/usr/bin/env python3
"""Generates the hostile GGUF corpus in this folder (run: python3 make_hostile.py).

Naming: ok_*.gguf must open (they also seed the fuzzer), bad_*.gguf must fail with
SDC_E_FORMAT, unsup_*.gguf with SDC_E_UNSUPPORTED. tests/test_gguf.c opens every *.gguf here.
Each file stays under 4 KiB. The layout follows ggml docs/gguf.md; this builder is written
from the spec, little-endian throughout.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# value type ids
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
              BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
# ggml type ids and (block, bytes per block)
GT = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q8_0": (8, 32, 34), "i8": (24, 1, 1),
      "f64": (28, 1, 8), "bf16": (30, 1, 2)}


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def kv_scalar(key, t, v):
    return s(key) + struct.pack("<I", t) + struct.pack(SCALAR_FMT[t], v)


def kv_str(key, v):
    return s(key) + struct.pack("<I", STRING) + s(v)


def kv_arr(key, t, vals):
    body = b"".join(s(v) if t == STRING else struct.pack(SCALAR_FMT[t], v) for v in vals)
    return s(key) + struct.pack("<IIQ", ARRAY, t, len(vals)) + body


def tinfo(name, ne, gtype, offset):
    """ne innermost first (ggml order); gtype a ggml id."""
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<IQ", gtype, offset)


def nbytes(ne, tname):
    _, blk, bb = GT[tname]
    n = 1
    for d in ne:
        n *= d
    return n // blk * bb


def pad(n, a):
    return (a - n % a) % a


def gguf(kvs=(), tensors=(), version=3, align=32, data=None, n_kv=None, n_tensors=None,
         magic=b"GGUF", pad_header=True):
    """tensors: list of (name, ne, type name or ggml id, offset or None for auto)."""
    infos = []
    off = 0
    blobs = []
    for name, ne, t, o in tensors:
        gid = GT[t][0] if isinstance(t, str) else t
        if o is None:
            o = off
        infos.append(tinfo(name, ne, gid, o))
        if isinstance(t, str):
            nb = nbytes(ne, t)
            blobs.append((o, nb))
            off = max(off, o + nb + pad(o + nb, align))
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                        len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(infos)
    if pad_header:
        head += b"\0" * pad(len(head), align)
    if data is None:
        size = max([o + n for o, n in blobs], default=0)
        size += pad(size, align)
        data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    return head + data


FILES = {}


def add(name, content):
    assert len(content) < 4096, name
    FILES[name] = content


# ---- valid files (fuzzer seeds; the test checks they open)
add("ok_minimal.gguf", gguf(tensors=[("w", [4], "f32", None)]))
add("ok_no_tensors.gguf", gguf(kvs=[kv_str("general.name", "x")], pad_header=False, data=b""))
add("ok_v2.gguf", gguf(version=2, kvs=[kv_scalar("a.u32", U32, 7)], tensors=[("t", [2, 3], "f16", None)]))
add("ok_all_kv.gguf", gguf(
    kvs=[kv_scalar("general.alignment", U32, 64), kv_scalar("k.u8", U8, 200), kv_scalar("k.i8", I8, -5),
         kv_scalar("k.u16", U16, 60000), kv_scalar("k.i16", I16, -30000), kv_scalar("k.u32", U32, 4000000000),
         kv_scalar("k.i32", I32, -2000000000), kv_scalar("k.f32", F32, 1.5), kv_scalar("k.bool", BOOL, 1),
         kv_str("k.str", "hello \"world\"\n"), kv_scalar("k.u64", U64, 2**63 + 5), kv_scalar("k.i64", I64, -2**62),
         kv_scalar("k.f64", F64, -0.25), kv_arr("k.arr_i32", I32, [1, -2, 3]),
         kv_arr("k.arr_str", STRING, ["a b", "c d", "", "e"] * 3), kv_arr("k.arr_empty", F32, [])],
    align=64,
    tensors=[("q", [64, 2], "q4_0", None), ("h", [3, 1, 2], "f16", None), ("b", [5], "bf16", None),
             ("e", [32, 1, 1, 2], "q8_0", None)]))
add("ok_sdcpp_style.gguf", gguf(tensors=[("a.bias", [8], "f32", None), ("a.weight", [32, 8], "q8_0", None),
                                         ("b.weight", [3, 3, 2, 4], "f16", None)]))
add("ok_out_of_order.gguf", gguf(tensors=[("late", [8], "f32", 64), ("early", [8], "f32", 0)],
                                 data=bytes(96)))
add("ok_gap.gguf", gguf(tensors=[("x", [8], "f32", 128)], data=bytes(160)))

# ---- header
add("bad_empty.gguf", b"")
add("bad_short_magic.gguf", b"GGU")
add("bad_magic.gguf", b"GGML" + gguf(tensors=[("w", [4], "f32", None)])[4:])
add("bad_magic_lower.gguf", b"gguf" + gguf()[4:])
add("bad_no_version.gguf", b"GGUF\x03\x00")
add("bad_truncated_counts.gguf", b"GGUF" + struct.pack("<IQ", 3, 0) + b"\0\0\0")
add("unsup_v1.gguf", b"GGUF" + struct.pack("<III", 1, 0, 0))
add("bad_v0.gguf", gguf(version=0))
add("unsup_v4.gguf", gguf(version=4))
add("unsup_big_endian.gguf", b"GGUF" + struct.pack(">IQQ", 3, 0, 0))
add("bad_huge_n_tensors.gguf", gguf(n_tensors=2**63 - 1))
add("bad_huge_n_tensors_u64max.gguf", gguf(n_tensors=2**64 - 1))
add("bad_huge_n_kv.gguf", gguf(n_kv=2**62))
add("bad_n_kv_too_many.gguf", gguf(kvs=[kv_str("a", "b")], n_kv=3))
add("bad_n_tensors_too_many.gguf", gguf(tensors=[("w", [4], "f32", None)], n_tensors=2, pad_header=False, data=b""))

# ---- key/value pairs
add("bad_key_len_huge.gguf", gguf(kvs=[struct.pack("<Q", 2**64 - 1) + b"abc" + b"\0" * 16]))
add("bad_key_len_past_eof.gguf", gguf(kvs=[struct.pack("<Q", 100) + b"abcdefgh" + b"\0" * 8]))
add("bad_key_empty.gguf", gguf(kvs=[kv_scalar("", U32, 1)]))
add("bad_key_nul.gguf", gguf(kvs=[kv_scalar("a\0b", U32, 1)]))
add("bad_key_too_long.gguf", gguf(kvs=[struct.pack("<Q", 70000) + b"k" * 40 + b"\0" * 16]))
add("bad_string_len_huge.gguf", gguf(kvs=[s("k") + struct.pack("<IQ", STRING, 2**63) + b"abc" + b"\0" * 10]))
add("bad_string_past_eof.gguf", gguf(kvs=[s("k") + struct.pack("<IQ", STRING, 40) + b"abc"], pad_header=False, data=b""))
add("bad_kv_type_unknown.gguf", gguf(kvs=[s("k") + struct.pack("<II", 13, 0) + b"\0" * 8]))
add("bad_kv_type_huge.gguf", gguf(kvs=[s("k") + struct.pack("<I", 0xFFFFFFFF) + b"\0" * 8]))
add("bad_kv_truncated_value.gguf", gguf(kvs=[s("k") + struct.pack("<I", U64) + b"\1\2\3"], pad_header=False, data=b""))
add("bad_kv_no_type.gguf", gguf(kvs=[s("key") + b"\4\0"], pad_header=False, data=b""))
add("bad_dup_key.gguf", gguf(kvs=[kv_scalar("k", U32, 1), kv_scalar("k", U32, 2)]))
add("bad_array_huge_count.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, U32, 2**62) + b"\0" * 32]))
add("bad_array_bytes_overflow.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, U64, 2**61 + 1) + b"\0" * 32]))
add("bad_array_str_huge_count.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, STRING, 2**60) + b"\0" * 64]))
add("bad_array_str_truncated.gguf", gguf(kvs=[kv_arr("k", STRING, ["abc", "def"])[:-2]], pad_header=False, data=b""))
add("bad_array_str_elem_huge.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, STRING, 2) + s("ok") +
                                              struct.pack("<Q", 2**64 - 8) + b"\0" * 32]))
add("bad_array_unknown_elem.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, 77, 1) + b"\0" * 8]))
add("unsup_nested_array.gguf", gguf(kvs=[s("k") + struct.pack("<IIQ", ARRAY, ARRAY, 1) +
                                         struct.pack("<IQ", U8, 1) + b"\1"]))
add("bad_array_truncated_header.gguf", gguf(kvs=[s("k") + struct.pack("<II", ARRAY, U8)], pad_header=False, data=b""))

# ---- alignment
one = [("w", [4], "f32", None)]
add("bad_align_zero.gguf", gguf(kvs=[kv_scalar("general.alignment", U32, 0)], tensors=one))
add("bad_align_three.gguf", gguf(kvs=[kv_scalar("general.alignment", U32, 3)], tensors=one))
add("bad_align_not_pow2.gguf", gguf(kvs=[kv_scalar("general.alignment", U32, 48)], tensors=one, align=48))
add("bad_align_wrong_type.gguf", gguf(kvs=[kv_scalar("general.alignment", U64, 32)], tensors=one))
add("bad_align_string.gguf", gguf(kvs=[kv_str("general.alignment", "32")], tensors=one))
add("bad_align_huge.gguf", gguf(kvs=[kv_scalar("general.alignment", U32, 2**31)], tensors=one, pad_header=False,
                                data=bytes(16)))

# ---- tensor infos
add("bad_tname_len_huge.gguf", gguf(tensors=[("w", [4], "f32", None)])[:24] + struct.pack("<Q", 2**64 - 2) + b"\0" * 64)
add("bad_tname_empty.gguf", gguf(tensors=[("", [4], "f32", None)]))
add("bad_tname_nul.gguf", gguf(tensors=[("a\0b", [4], "f32", None)]))
add("bad_tname_too_long.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 5000) + b"n" * 4000)
add("bad_ndims_0.gguf", gguf(tensors=[("w", [], "f32", None)]))
add("bad_ndims_5.gguf", gguf(tensors=[("w", [1, 1, 1, 1, 4], "f32", None)]))
add("bad_ndims_huge.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + s("w") + struct.pack("<I", 0xFFFFFFFF) +
    b"\1" * 64)
add("bad_dim_zero.gguf", gguf(tensors=[("w", [4, 0], "f32", None)], data=bytes(32)))
add("bad_nelem_overflow.gguf", gguf(tensors=[("w", [2**32, 2**32], 0, 0)], data=bytes(32)))
add("bad_nelem_overflow_4d.gguf", gguf(tensors=[("w", [2**16, 2**16, 2**16, 2**16], 0, 0)], data=bytes(32)))
add("bad_nelem_int64max.gguf", gguf(tensors=[("w", [2**63], 0, 0)], data=bytes(32)))
add("bad_nbytes_overflow.gguf", gguf(tensors=[("w", [2**62], 28, 0)], data=bytes(32)))
add("unsup_type_unknown.gguf", gguf(tensors=[("w", [4], 99, 0)], data=bytes(32)))
add("unsup_type_huge.gguf", gguf(tensors=[("w", [4], 0xFFFFFFFF, 0)], data=bytes(32)))
add("unsup_type_removed_q4_2.gguf", gguf(tensors=[("w", [32], 4, 0)], data=bytes(32)))
add("unsup_type_iq2_xxs.gguf", gguf(tensors=[("w", [256], 16, 0)], data=bytes(96)))
add("bad_q4_0_row.gguf", gguf(tensors=[("w", [33, 2], 2, 0)], data=bytes(96)))
add("bad_q8_0_row16.gguf", gguf(tensors=[("w", [16], 8, 0)], data=bytes(64)))
add("bad_tinfo_truncated.gguf", gguf(tensors=[("w", [4, 4], "f32", None)], pad_header=False, data=b"")[:24 + 9 + 4 + 12])
add("bad_tinfo_no_offset.gguf", gguf(tensors=[("w", [4], "f32", None)], pad_header=False, data=b"")[:-4])
add("bad_dup_name.gguf", gguf(tensors=[("w", [8], "f32", None), ("w", [8], "f32", None)]))
add("bad_dup_name_far.gguf", gguf(tensors=[("a", [8], "f32", None), ("b", [8], "f32", None),
                                           ("c", [8], "f32", None), ("a", [8], "f32", None)]))

# ---- data section
add("bad_offset_misaligned.gguf", gguf(tensors=[("w", [4], "f32", 4)], data=bytes(64)))
add("bad_offset_misaligned64.gguf", gguf(kvs=[kv_scalar("general.alignment", U32, 64)],
                                         tensors=[("w", [4], "f32", 32)], align=64, data=bytes(128)))
add("bad_data_past_eof.gguf", gguf(tensors=[("w", [64], "f32", None)], data=bytes(100)))
add("bad_data_past_eof_second.gguf", gguf(tensors=[("a", [8], "f32", None), ("b", [8], "f32", 32)], data=bytes(40)))
add("bad_offset_huge.gguf", gguf(tensors=[("w", [4], "f32", 2**64 - 32)], data=bytes(32)))
add("bad_offset_wrap.gguf", gguf(tensors=[("w", [2**40], "i8", 2**64 - 2**39)], data=bytes(32)))
add("bad_no_data.gguf", gguf(tensors=[("w", [4], "f32", None)], data=b""))
add("bad_no_data_section.gguf", gguf(tensors=[("w", [4], "f32", None)], pad_header=False, data=b""))
add("bad_overlap.gguf", gguf(tensors=[("a", [16], "f32", 0), ("b", [16], "f32", 32)], data=bytes(128)))
add("bad_overlap_same.gguf", gguf(tensors=[("a", [4], "f32", 0), ("b", [4], "f32", 0)], data=bytes(32)))
add("bad_overlap_inside.gguf", gguf(tensors=[("big", [64], "f32", 0), ("small", [4], "f32", 128),
                                             ("c", [4], "f32", 256)], data=bytes(288)))
add("bad_overlap_reversed.gguf", gguf(tensors=[("b", [16], "f32", 32), ("a", [16], "f32", 0)], data=bytes(128)))


def main():
    for old in os.listdir(HERE):
        if old.endswith(".gguf"):
            os.remove(os.path.join(HERE, old))
    for name, content in sorted(FILES.items()):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(content)
    print(f"wrote {len(FILES)} files to {HERE}")


if __name__ == "__main__":
    main()
