"""Parquet bytes of the format: page checksums written and verified, so a flipped byte is caught."""
from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from .. import fsio
from .errors import CorruptFile


def encode(table: pa.Table) -> bytes:
    """The file the writer stores for ``table`` (zstd, a checksum on every page)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()


def open_file(uri: str) -> pq.ParquetFile:
    """A Parquet file of an output, footer read and checked; CorruptFile if it cannot be."""
    fs, path = fsio.resolve(uri)
    try:
        return pq.ParquetFile(fs.open_input_file(path), page_checksum_verification=True)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException, ValueError) as e:
        raise CorruptFile(uri, f"unreadable Parquet ({_short(e)})") from None


def read(uri: str, columns: list[str] | None = None) -> pa.Table:
    f = open_file(uri)
    try:
        return f.read(columns=columns)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise CorruptFile(uri, f"unreadable Parquet ({_short(e)})") from None


def iter_batches(uri: str, columns: list[str] | None = None, batch_size: int = 4096):
    """Record batches of a file, one row group at a time (memory bounded by the group)."""
    f = open_file(uri)
    seen = 0
    try:
        for batch in f.iter_batches(batch_size=batch_size, columns=columns):
            seen += batch.num_rows
            yield batch
    except (OSError, pa.ArrowException, ValueError) as e:
        raise CorruptFile(uri, f"unreadable Parquet ({_short(e)})") from None
    if seen != f.metadata.num_rows:     # a damaged page header can end a column early, silently
        raise CorruptFile(uri, f"unreadable Parquet ({seen} rows read, its footer says {f.metadata.num_rows})")


def _short(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
