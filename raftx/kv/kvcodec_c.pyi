"""Type stub of the compiled twin ``kvcodec_c``; the spec and docstrings are in ``kvcodec_py``."""

MAX_KEY_BYTES: int
MAX_VALUE_BYTES: int

def encode_put(key: object, value: object, client_id: object, serial: object, acked: object) -> bytes | None: ...
def decode_put(payload: object) -> tuple[int, int, int, bytes, bytes] | None: ...
