"""Minimal GGUF v3 writer and reader, written from the GGUF spec (ggml/docs/gguf.md).

File layout (little-endian):
  u32 magic "GGUF" | u32 version (3) | u64 tensor_count | u64 kv_count
  kv_count x (string key | u32 value_type | value)
  tensor_count x (string name | u32 n_dims | u64 dims[n_dims] (ne0 innermost) | u32 ggml_type | u64 offset)
  padding to general.alignment (default 32); tensor data, each tensor at an aligned offset from the data start.
  string = u64 length + UTF-8 bytes (no NUL); array = u32 elem_type + u64 count + elements.
"""
import struct
import numpy as np

# metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32

_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
           BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def quantize_q8_0(x):
    """ggml quantize_row_q8_0_ref: per block of 32, d = amax/127 (fp32), q = roundf(x * (1/d)), d stored as fp16."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(x).max(axis=1)
    d = amax / np.float32(127.0)
    inv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = x * inv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)   # roundf: half away from zero
    out = np.zeros((x.shape[0], 2 + QK8_0), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def dequantize_q8_0(raw, n):
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 2 + QK8_0)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    q = b[:, 2:].copy().view(np.int8).astype(np.float32)
    return (q * d).reshape(-1)[:n]


class GGUFWriter:
    def __init__(self, alignment=32):
        self.kv = []        # (key, type, value, elem_type)
        self.tensors = []   # (name, dims, ggml_type, bytes)
        self.alignment = alignment

    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def add_string(self, k, v): self.add(k, STRING, v)
    def add_u32(self, k, v): self.add(k, UINT32, v)
    def add_f32(self, k, v): self.add(k, FLOAT32, v)
    def add_bool(self, k, v): self.add(k, BOOL, v)
    def add_array(self, k, elem_type, values): self.add(k, ARRAY, list(values), elem_type)

    def add_tensor(self, name, arr, ggml_type):
        """arr: numpy array in torch/row-major shape (e.g. [out, in]); GGUF dims are reversed (ne0 = last axis)."""
        arr = np.ascontiguousarray(arr)
        dims = list(reversed(arr.shape))
        if ggml_type == GGML_F32:
            data = arr.astype("<f4").tobytes()
        elif ggml_type == GGML_F16:
            data = arr.astype("<f2").tobytes()
        elif ggml_type == GGML_Q8_0:
            assert arr.shape[-1] % QK8_0 == 0
            data = quantize_q8_0(arr)
        else:
            raise ValueError(ggml_type)
        self.tensors.append((name, dims, ggml_type, data))

    def _value(self, vtype, v, elem_type=None):
        if vtype == STRING:
            return _str(v)
        if vtype == ARRAY:
            out = struct.pack("<IQ", elem_type, len(v))
            if elem_type == STRING:
                return out + b"".join(_str(s) for s in v)
            return out + np.asarray(v, dtype=np.dtype(_SCALAR[elem_type][1:]).newbyteorder("<")).tobytes()
        return struct.pack(_SCALAR[vtype], v)

    def write(self, path):
        A = self.alignment
        out = bytearray()
        out += b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for k, t, v, et in self.kv:
            out += _str(k) + struct.pack("<I", t) + self._value(t, v, et)
        off = 0
        offsets = []
        for name, dims, gt, data in self.tensors:
            offsets.append(off)
            out += _str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", gt, off)
            off += (len(data) + A - 1) // A * A
        out += b"\0" * ((-len(out)) % A)
        for (name, dims, gt, data), o in zip(self.tensors, offsets):
            out += data + b"\0" * ((-len(data)) % A)
        with open(path, "wb") as f:
            f.write(out)
        return len(out)


def read_gguf(path):
    """Returns (metadata dict, {name: float32 numpy array in torch shape}) -- F32/F16/Q8_0 only."""
    buf = open(path, "rb").read()
    p = 0

    def rd(fmt):
        nonlocal p
        v = struct.unpack_from(fmt, buf, p); p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def rstr():
        nonlocal p
        n = rd("<Q"); s = buf[p:p + n].decode("utf-8"); p += n
        return s

    def rval(t):
        if t == STRING:
            return rstr()
        if t == ARRAY:
            et, n = rd("<I"), rd("<Q")
            return [rval(et) for _ in range(n)]
        return rd(_SCALAR[t])

    assert buf[:4] == b"GGUF"; p = 4
    ver, nt, nkv = rd("<I"), rd("<Q"), rd("<Q")
    assert ver == 3
    meta = {}
    for _ in range(nkv):
        k = rstr(); t = rd("<I"); meta[k] = rval(t)
    infos = []
    for _ in range(nt):
        name = rstr(); nd = rd("<I"); dims = [rd("<Q") for _ in range(nd)]
        gt = rd("<I"); off = rd("<Q")
        infos.append((name, dims, gt, off))
    A = meta.get("general.alignment", 32)
    p += (-p) % A
    base = p
    tensors = {}
    for name, dims, gt, off in infos:
        n = int(np.prod(dims))
        o = base + off
        if gt == GGML_F32:
            a = np.frombuffer(buf, "<f4", n, o).astype(np.float32)
        elif gt == GGML_F16:
            a = np.frombuffer(buf, "<f2", n, o).astype(np.float32)
        elif gt == GGML_Q8_0:
            a = dequantize_q8_0(buf[o:o + n // QK8_0 * (2 + QK8_0)], n)
        else:
            raise ValueError(gt)
        tensors[name] = a.reshape(list(reversed(dims)))
    return meta, tensors
