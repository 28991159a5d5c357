"""The framing and encoding rules of docs/PROTOCOL.md, shared by every part."""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import msgpack
import zmq

SIGNATURE = b"TASKMILL1"
# Hosts and clients drop a received body over 16 MiB; the frame limit is
# that plus 1 MiB (PROTOCOL.md section 2).
MAX_BODY = 16 * 1024 * 1024
MAX_FRAME = MAX_BODY + 1024 * 1024
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"

Endpoints = Union[str, Sequence[str]]
Seconds = Union[int, float, _dt.timedelta]


def pack(value: Any) -> bytes:
    """msgpack bytes of a Python value: bytes travel as bin, str as str."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode(command: str, body: Mapping[str, Any]) -> List[bytes]:
    """The three frames of one message. Empty fields are left out."""
    clean = {k: v for k, v in body.items() if not _empty(v)}
    return [SIGNATURE, command.encode("ascii"), pack(clean)]


def decode(frames: Sequence[bytes]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(command, body) of a received message, None if it breaks the framing."""
    if len(frames) != 3 or frames[0] != SIGNATURE or len(frames[2]) > MAX_BODY:
        return None
    try:
        body = unpack(frames[2])
    except Exception:  # noqa: BLE001 - any undecodable body is dropped alike
        return None
    if not isinstance(body, dict):
        return None
    return frames[1].decode("ascii", "replace"), body


def _empty(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (str, bytes, list, tuple, dict)) and len(v) == 0:
        return True
    return False


def to_ms(value: Optional[Seconds]) -> Optional[int]:
    """Seconds (int, float or timedelta) to integer milliseconds."""
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if value < 0:
        raise ValueError(f"a duration cannot be negative: {value}")
    return int(round(value * 1000))


def to_unix_ms(value: Union[None, int, float, _dt.datetime]) -> Optional[int]:
    """A unix time in seconds or an aware datetime to unix milliseconds."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return int(value.timestamp() * 1000)
    return int(round(value * 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


def endpoint_list(endpoints: Optional[Endpoints], env: str, default: str) -> List[str]:
    """The endpoints to try in order: the argument, else $env (comma
    separated), else the default."""
    if endpoints is None:
        endpoints = os.environ.get(env) or default
    if isinstance(endpoints, str):
        endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
    out = list(endpoints)
    if not out:
        raise ValueError("no endpoint given")
    return out


def read_endpoints(data_dir: Union[str, Path]) -> Dict[str, str]:
    """The endpoints a broker started with port 0 wrote to
    DATA_DIR/endpoints.json ({frontend, backend, events, pid})."""
    return json.loads((Path(data_dir) / "endpoints.json").read_text())


class CurveKeys:
    """CURVE keys (Z85 text, 40 characters each). `server_key` is the
    broker's public key; `public_key`/`secret_key` this peer's pair."""

    def __init__(self, server_key: str, public_key: str, secret_key: str) -> None:
        for name, key in (("server_key", server_key), ("public_key", public_key), ("secret_key", secret_key)):
            if len(key) != 40:
                raise ValueError(f"CURVE {name} must be 40 characters of Z85 (got {len(key)})")
        self.server_key = server_key
        self.public_key = public_key
        self.secret_key = secret_key

    @classmethod
    def from_files(cls, server_pub: Union[str, Path], key_file: Union[str, Path]) -> "CurveKeys":
        """Reads the files `taskmill keygen` writes: a `.pub` file (the key
        alone) and a `.key` file (`public-key = ...`, `secret-key = ...`);
        `~` in either path is the home folder."""
        pair = read_key_file(key_file)
        return cls(Path(server_pub).expanduser().read_text().strip(), pair["public-key"], pair["secret-key"])

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_serverkey = self.server_key.encode("ascii")
        sock.curve_publickey = self.public_key.encode("ascii")
        sock.curve_secretkey = self.secret_key.encode("ascii")


def read_key_file(path: Union[str, Path]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in Path(path).expanduser().read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip()
    if "public-key" not in out or "secret-key" not in out:
        raise ValueError(f"{path}: expected public-key = ... and secret-key = ...")
    return out


def new_socket(ctx: zmq.Context, kind: int, curve: Optional[CurveKeys]) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
    if curve is not None:
        curve.apply(sock)
    return sock
