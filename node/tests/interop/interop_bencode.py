"""Minimal bencoding shared by the interop helpers (no third-party deps)."""


def bencode(v):
    """int / str / bytes / list / dict (keys sorted as bytes) -> bytes."""
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError("cannot bencode %r" % type(v))


def bdecode(buf):
    """bytes -> int / bytes / list / dict (bytes keys). Raises on bad input."""
    def dec(i):
        c = buf[i:i + 1]
        if c == b"i":
            e = buf.index(b"e", i)
            return int(buf[i + 1:e]), e + 1
        if c == b"l":
            out, i = [], i + 1
            while buf[i:i + 1] != b"e":
                if i >= len(buf):
                    raise ValueError("unterminated list")
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            out, i = {}, i + 1
            while buf[i:i + 1] != b"e":
                if i >= len(buf):
                    raise ValueError("unterminated dict")
                k, i = dec(i)
                v, i = dec(i)
                out[k] = v
            return out, i + 1
        colon = buf.index(b":", i)
        n = int(buf[i:colon])
        if colon + 1 + n > len(buf):
            raise ValueError("string past end")
        return buf[colon + 1:colon + 1 + n], colon + 1 + n

    v, end = dec(0)
    if end != len(buf):
        raise ValueError("trailing bytes")
    return v


def to_json(v):
    """Decoded value -> JSON-able: byte strings become text when printable
    ASCII, else "hex:<hex>"."""
    if isinstance(v, bytes):
        if v and all(32 <= b < 127 for b in v):
            return v.decode()
        return "hex:" + v.hex()
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {to_json(k): to_json(x) for k, x in v.items()}
    return v
