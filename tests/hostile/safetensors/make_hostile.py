#!/usr/bin/env python3
"""Writes the hostile safetensors corpus next to this script (run it from anywhere).

File name prefixes tell tests/test_safetensors.c what to expect:
  bad_*.safetensors    must fail with SDC_E_FORMAT
  unsup_*.safetensors  must fail with SDC_E_UNSUPPORTED (well-formed, unknown dtype)
  ok_*.safetensors     must open (valid edge cases; also seeds for fuzz_safetensors)
Every file stays well under 4 KiB. The files are committed; rerun this after editing it.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def raw(name, data):
    assert len(data) < 4096, name
    with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
        f.write(data)


def st(name, header, data=b"", hlen=None, pad=True):
    """header: str/bytes of JSON text (or a dict, dumped compactly)."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * (-len(header) % 8)
    n = len(header) if hlen is None else hlen
    raw(name, struct.pack("<Q", n) + header + data)


def t(dtype="F32", shape=(1,), offs=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


def one(name, entry, data=b"\0" * 4):
    st(name, {"a": entry}, data)


def field(name, text, data=b"\0" * 4):
    """A tensor 'a' whose entry is given as raw JSON text (to write things json.dumps won't)."""
    st(name, '{"a":' + text + "}", data)


for f in os.listdir(HERE):
    if f.endswith(".safetensors"):
        os.remove(os.path.join(HERE, f))

# --- the 8-byte length and the header's framing
raw("bad_empty", b"")
raw("bad_short", b"\x02\x00\x00")
raw("bad_hlen_only", struct.pack("<Q", 2))
st("bad_hlen_past_eof", "{}", hlen=1000)
st("bad_hlen_huge", "{}", hlen=2**64 - 1)
st("bad_hlen_over_cap", "{}", hlen=100_000_001)
st("bad_hlen_zero", "{}", hlen=0)
st("bad_hlen_one", "{}", hlen=1)
st("bad_hlen_cuts_json", '{"a":' + json.dumps(t()) + "}", b"\0" * 4, hlen=20)
st("bad_not_json", "hello, world")
st("bad_json_array", "[1,2,3]")
st("bad_json_string", '"{}"')
st("bad_json_null", "null")
st("bad_leading_space", " {}", pad=False)
st("bad_truncated_json", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,')
st("bad_trailing_garbage", "{} xyz")
st("bad_two_objects", "{}{}")
st("bad_trailing_nul", b"{}\0\0\0\0\0\0", pad=False)
st("bad_unquoted_key", '{a:1}')
st("bad_trailing_comma", '{"a":' + json.dumps(t()) + ",}", b"\0" * 4)
st("bad_deep_nesting", '{"__metadata__":' + "[" * 1500 + "]" * 1500 + "}")

# --- tensor entries of the wrong kind
field("bad_tensor_number", "5")
field("bad_tensor_array", "[]")
field("bad_tensor_string", '"F32"')
field("bad_tensor_empty", "{}")
field("bad_dtype_missing", '{"shape":[1],"data_offsets":[0,4]}')
field("bad_shape_missing", '{"dtype":"F32","data_offsets":[0,4]}')
field("bad_offsets_missing", '{"dtype":"F32","shape":[1]}')
field("bad_dtype_number", '{"dtype":3,"shape":[1],"data_offsets":[0,4]}')
field("bad_dtype_null", '{"dtype":null,"shape":[1],"data_offsets":[0,4]}')
field("bad_duplicate_field", '{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}')
field("bad_duplicate_offsets_field", '{"dtype":"F32","shape":[1],"data_offsets":[0,4],"data_offsets":[0,4]}')

# --- shapes
field("bad_shape_string", '{"dtype":"F32","shape":"1","data_offsets":[0,4]}')
field("bad_shape_object", '{"dtype":"F32","shape":{"0":1},"data_offsets":[0,4]}')
field("bad_shape_elem_string", '{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}')
field("bad_shape_elem_bool", '{"dtype":"F32","shape":[true],"data_offsets":[0,4]}')
field("bad_shape_elem_null", '{"dtype":"F32","shape":[null],"data_offsets":[0,4]}')
field("bad_shape_nested", '{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}')
field("bad_shape_negative", '{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}')
field("bad_shape_negative_pair", '{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}')
field("bad_shape_fraction", '{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}')
field("bad_shape_tiny_fraction", '{"dtype":"F32","shape":[1.0000000001],"data_offsets":[0,4]}')
field("bad_shape_huge", '{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}')
field("bad_shape_inf", '{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}')
field("bad_shape_2pow53", '{"dtype":"F32","shape":[9007199254740992],"data_offsets":[0,4]}')
field("bad_shape_2pow64", '{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}')
field("bad_shape_nan", '{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}')
field("bad_shape_hex", '{"dtype":"F32","shape":[0x1],"data_offsets":[0,4]}')
field("bad_too_many_dims", '{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}')
field("bad_shape_overflow", '{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,4]}')
field("bad_shape_overflow_bytes", '{"dtype":"F64","shape":[4294967296,536870912],"data_offsets":[0,4]}')
field("bad_shape_zero_times_huge", '{"dtype":"F32","shape":[0,9007199254740992],"data_offsets":[0,0]}')

# --- data_offsets
field("bad_offsets_not_array", '{"dtype":"F32","shape":[1],"data_offsets":0}')
field("bad_offsets_object", '{"dtype":"F32","shape":[1],"data_offsets":{"begin":0,"end":4}}')
field("bad_offsets_empty", '{"dtype":"F32","shape":[1],"data_offsets":[]}')
field("bad_offsets_one", '{"dtype":"F32","shape":[1],"data_offsets":[4]}')
field("bad_offsets_three", '{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}')
field("bad_offsets_string", '{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}')
field("bad_offsets_negative", '{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}')
field("bad_offsets_fraction", '{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}')
field("bad_offsets_huge", '{"dtype":"F32","shape":[1],"data_offsets":[0,1e20]}')
field("bad_offsets_wrap", '{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}')
field("bad_offsets_end_before_begin", '{"dtype":"F32","shape":[1],"data_offsets":[8,4]}', b"\0" * 8)
field("bad_offsets_past_end", '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', b"\0" * 2)
field("bad_offsets_begin_past_end", '{"dtype":"F32","shape":[0],"data_offsets":[9,9]}', b"\0" * 4)
field("bad_offsets_no_data", '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', b"")
one("bad_size_mismatch", t("F16", (3, 2), (0, 10)), b"\0" * 12)
one("bad_size_mismatch_scalar", t("F32", (), (0, 8)), b"\0" * 8)
one("bad_size_mismatch_empty", t("F32", (0,), (0, 4)), b"\0" * 4)
one("bad_size_mismatch_bool", t("BOOL", (4,), (0, 8)), b"\0" * 8)
st("bad_overlap", {"a": t("F32", (2,), (0, 8)), "b": t("F32", (2,), (4, 12))}, b"\0" * 12)
st("bad_overlap_same", {"a": t("F32", (1,), (0, 4)), "b": t("I32", (1,), (0, 4))}, b"\0" * 4)
st("bad_overlap_inside", {"a": t("U8", (8,), (0, 8)), "b": t("U8", (2,), (3, 5))}, b"\0" * 8)
st("bad_overlap_reversed", {"b": t("U8", (4,), (4, 8)), "a": t("U8", (6,), (0, 6))}, b"\0" * 8)

# --- names and metadata
st("bad_duplicate_name", '{"a":' + json.dumps(t()) + ',"a":' + json.dumps(t("F32", (1,), (4, 8))) + "}", b"\0" * 8)
st("bad_duplicate_name_order", '{"a":' + json.dumps(t()) + ',"b":' + json.dumps(t("F32", (1,), (4, 8)))
   + ',"a":' + json.dumps(t("F32", (0,), (8, 8))) + "}", b"\0" * 8)
st("bad_duplicate_name_escaped", '{"a\\nb":' + json.dumps(t()) + ',"a\\nb":' + json.dumps(t("F32", (1,), (4, 8)))
   + "}", b"\0" * 8)
st("bad_long_name", {"\u00e9" * 300: t("F32", (2,), (0, 4))}, b"\0" * 4)
st("bad_newline_name_mismatch", '{"x\\r\\ny":' + json.dumps(t("F32", (2,), (0, 4))) + "}", b"\0" * 4)
st("bad_duplicate_metadata", '{"__metadata__":{"x":"1"},"__metadata__":{"y":"2"}}')
st("bad_metadata_dup_key", '{"__metadata__":{"x":"1","x":"2"}}')
st("bad_metadata_number", '{"__metadata__":{"x":1}}')
st("bad_metadata_null", '{"__metadata__":{"x":null}}')
st("bad_metadata_bool", '{"__metadata__":{"x":true}}')
st("bad_metadata_nested", '{"__metadata__":{"x":{"y":"z"}}}')
st("bad_metadata_array_value", '{"__metadata__":{"x":["y"]}}')
st("bad_metadata_array", '{"__metadata__":["x","y"]}')
st("bad_metadata_string", '{"__metadata__":"x"}')
st("bad_metadata_null_itself", '{"__metadata__":null}')
st("bad_metadata_tensor_like", {"__metadata__": t()}, b"\0" * 4)

# --- text encoding
st("bad_utf8_invalid_byte", b'{"a\xff":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_continuation", b'{"a\x80":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_overlong", b'{"\xc0\xaf":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_overlong3", b'{"\xe0\x80\xaf":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_surrogate", b'{"\xed\xa0\x80":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_too_big", b'{"\xf4\x90\x80\x80":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_truncated", b'{"a\xe2\x82":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_utf8_at_end", b'{}\xe2\x82', pad=False)
st("bad_utf8_metadata", b'{"__metadata__":{"k":"\xfe"}}')
st("bad_raw_nul_in_name", b'{"a\x00b":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_raw_control_in_name", b'{"a\x01":' + json.dumps(t()).encode() + b"}", b"\0" * 4)
st("bad_escape_u0000", '{"a\\u0000b":' + json.dumps(t()) + "}", b"\0" * 4)
st("bad_escape_lone_high_surrogate", '{"a\\ud800":' + json.dumps(t()) + "}", b"\0" * 4)
st("bad_escape_lone_low_surrogate", '{"a\\udc00":' + json.dumps(t()) + "}", b"\0" * 4)
st("bad_escape_invalid", '{"a\\q":' + json.dumps(t()) + "}", b"\0" * 4)
st("bad_escape_short_u", '{"a\\u12":' + json.dumps(t()) + "}", b"\0" * 4)

# --- dtypes sdc does not read (well-formed otherwise)
for dt in ["F8_E4M3", "F8_E5M2", "U16", "U32", "U64", "C64", "f16", "float16", "", "F32 "]:
    tag = dt.strip().lower().replace(" ", "_") or "empty"
    if dt == "F32 ":
        tag = "f32_space"
    if dt == "f16":
        tag = "lowercase_f16"
    one("unsup_dtype_" + tag, t(dt, (1,), (0, 1)), b"\0" * 1)

# --- valid edge cases (must open; seeds for the fuzzer)
st("ok_empty_object", "{}")
st("ok_no_padding", "{}", pad=False)
st("ok_whitespace", '  { }'.lstrip() + "\n\t\r ", pad=False)
one("ok_one_f32", t("F32", (1,), (0, 4)), struct.pack("<f", 1.5))
one("ok_scalar", t("I32", (), (0, 4)), struct.pack("<i", 7))
one("ok_empty_tensor", t("F16", (0, 3), (0, 0)), b"")
one("ok_ignored_field", dict(t(), extra=[1, 2]), b"\0" * 4)
st("ok_metadata", {"__metadata__": {"format": "pt", "": "", "k\u00e9y": "v\u2603"}, "w": t("BF16", (2,), (0, 4))},
   b"\x80\x3f\x00\x40")
st("ok_metadata_last", {"w": t("U8", (3,), (0, 3)), "__metadata__": {"a": "b"}}, b"\1\2\3")
st("ok_unaligned", '{"h":' + json.dumps(t("F64", (1,), (0, 8))) + "}", b"\0" * 8, pad=False)
st("ok_gap_and_tail", {"a": t("I16", (2,), (0, 4)), "b": t("I8", (2,), (8, 10))}, b"\0" * 16)
st("ok_out_of_order", {"b": t("I64", (1,), (8, 16)), "a": t("I64", (1,), (0, 8))}, b"\0" * 16)
st("ok_empty_at_end", {"a": t("U8", (4,), (0, 4)), "z": t("U8", (0,), (4, 4)), "y": t("U8", (0,), (2, 2))}, b"\0" * 4)
st("ok_escaped_names", '{"a\\"b\\\\c\\u00e9\\ud83d\\ude00\\n":' + json.dumps(t()) + "}", b"\0" * 4)
st("ok_all_dtypes", {
    "f64": t("F64", (1,), (0, 8)), "i64": t("I64", (1,), (8, 16)), "f32": t("F32", (1,), (16, 20)),
    "i32": t("I32", (1,), (20, 24)), "f16": t("F16", (1,), (24, 26)), "bf16": t("BF16", (1,), (26, 28)),
    "i16": t("I16", (1,), (28, 30)), "i8": t("I8", (1,), (30, 31)), "u8": t("U8", (1,), (31, 32)),
    "bool": t("BOOL", (1,), (32, 33))}, b"\0" * 33)
st("ok_eight_dims", {"a": t("U8", (1, 2, 1, 2, 1, 2, 1, 2), (0, 16))}, b"\0" * 16)
st("ok_float_integers", '{"a":{"dtype":"F32","shape":[2.0,1e0],"data_offsets":[0.0,8E0]}}', b"\0" * 8)
print("wrote", len([f for f in os.listdir(HERE) if f.endswith(".safetensors")]), "files to", HERE)
