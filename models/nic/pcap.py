"""Classic libpcap files: read (both byte orders, µs and ns) and write (little-endian).

Only Ethernet captures (link type 1) are accepted, and every record must hold its whole frame:
the NIC model judges complete frames, so a record cut by the capture's snap length is an error
rather than a silently different frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from vmassist.errors import UserError
from vmassist.outdir import atomic_output_file

__all__ = [
    "Record",
    "LINKTYPE_ETHERNET",
    "MAX_CAPLEN",
    "read_pcap",
    "parse_pcap",
    "pcap_bytes",
    "write_pcap",
]

LINKTYPE_ETHERNET = 1
MAX_CAPLEN = 262144
"""libpcap's own upper bound on a record (``MAXIMUM_SNAPLEN``); a larger one is a corrupt file."""

_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_GLOBAL = 24
_RECORD = 16


class Record(NamedTuple):
    """One captured frame: its timestamp in nanoseconds and its bytes (no FCS)."""

    ts_ns: int
    data: bytes


def read_pcap(path: str | os.PathLike[str]) -> list[Record]:
    """Read a classic pcap file.

    Raises
    ------
    UserError
        Unreadable file, bad magic, not Ethernet, truncated header or record, a record that
        captured less than the frame, or an implausible record length; the field names the
        record (``record 7``, 0-based).
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise UserError(str(path), f"cannot read: {e.strerror or e}") from None
    return parse_pcap(blob, str(path))


def parse_pcap(blob: bytes, source: str = "<pcap>") -> list[Record]:
    """Parse the bytes of a classic pcap file (see :func:`read_pcap`)."""
    if len(blob) < _GLOBAL:
        raise UserError(source, f"truncated file header ({len(blob)} of {_GLOBAL} bytes)", "header")
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", blob, 0)
        if magic in (_MAGIC_US, _MAGIC_NS):
            break
    else:
        raise UserError(
            source,
            f"bad magic {blob[:4].hex()} (not a classic pcap file; pcapng is not read)",
            "header",
        )
    scale = 1 if magic == _MAGIC_NS else 1000
    frac_limit = 1_000_000_000 if magic == _MAGIC_NS else 1_000_000
    linktype = struct.unpack_from(order + "I", blob, 20)[0] & 0x0FFFFFFF  # upper bits: FCS info
    if linktype != LINKTYPE_ETHERNET:
        raise UserError(
            source, f"link type {linktype} is not Ethernet ({LINKTYPE_ETHERNET})", "header"
        )

    records: list[Record] = []
    pos = _GLOBAL
    rec = struct.Struct(order + "IIII")
    while pos < len(blob):
        where = f"record {len(records)}"
        if len(blob) - pos < _RECORD:
            raise UserError(
                source, f"truncated record header ({len(blob) - pos} of {_RECORD} bytes)", where
            )
        sec, frac, caplen, origlen = rec.unpack_from(blob, pos)
        pos += _RECORD
        if frac >= frac_limit:
            raise UserError(source, f"timestamp fraction {frac} is out of range", where)
        if caplen > MAX_CAPLEN:
            raise UserError(
                source, f"captured length {caplen} exceeds the {MAX_CAPLEN}-byte maximum", where
            )
        if caplen < origlen:
            raise UserError(
                source, f"captured only {caplen} of {origlen} bytes (snap length too small)", where
            )
        if len(blob) - pos < caplen:
            raise UserError(
                source, f"truncated record ({len(blob) - pos} of {caplen} bytes)", where
            )
        records.append(Record(sec * 1_000_000_000 + frac * scale, bytes(blob[pos : pos + caplen])))
        pos += caplen
    return records


def pcap_bytes(
    records: Iterable[Record | tuple[int, bytes]], *, nanos: bool | None = None
) -> bytes:
    """The bytes of a little-endian classic pcap file holding ``records``.

    Parameters
    ----------
    records : iterable of (ts_ns, bytes)
        The frames, written in this order.
    nanos : bool, optional
        Write nanosecond timestamps (magic a1b23c4d) rather than microseconds. By default,
        nanoseconds only when some timestamp is not a whole microsecond, so nothing is lost.

    Raises
    ------
    ValueError
        A negative timestamp, or ``nanos=False`` with a timestamp that is not a whole µs.
    """
    recs = [Record(int(ts), bytes(data)) for ts, data in records]
    if nanos is None:
        nanos = any(r.ts_ns % 1000 for r in recs)
    scale = 1 if nanos else 1000
    out = [
        struct.pack(
            "<IHHiIII", _MAGIC_NS if nanos else _MAGIC_US, 2, 4, 0, 0, MAX_CAPLEN, LINKTYPE_ETHERNET
        )
    ]
    for ts, data in recs:
        if ts < 0 or ts % scale:
            raise ValueError(f"timestamp {ts} ns cannot be written with {scale} ns resolution")
        sec, frac = divmod(ts // scale, 1_000_000_000 // scale)
        out.append(struct.pack("<IIII", sec, frac, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def write_pcap(
    path: str | os.PathLike[str],
    records: Iterable[Record | tuple[int, bytes]],
    *,
    nanos: bool | None = None,
) -> Path:
    """Write ``records`` to ``path`` atomically (see :func:`pcap_bytes`); returns the path."""
    blob = pcap_bytes(records, nanos=nanos)
    with atomic_output_file(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)
