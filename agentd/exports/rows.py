"""Training rows to a file: JSON lines, or Parquet with an explicit schema.

Both load with ``datasets.load_dataset("json" | "parquet", data_files=…)``. Parquet needs its
schema up front: inferring it from the first rows would fail later when, say, the first rows
have no token ids and a later one has them. Rows are written in bounded row groups.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, Literal

import msgspec

RowFormat = Literal["jsonl", "parquet"]
ROW_GROUP = 512


def row_format(out_name: str) -> RowFormat:
    """Parquet when the output is named ``*.parquet``, else JSON lines."""
    return "parquet" if out_name.endswith(".parquet") else "jsonl"


class RowSink:
    """``add(row)`` for each row; closing flushes the last row group (Parquet)."""

    def __init__(self, f: IO[bytes], fmt: RowFormat, schema: Callable[[], Any]) -> None:
        self._f = f
        self._fmt = fmt
        self._schema = schema  # called only for Parquet, so JSON lines never import pyarrow
        self._encoder = msgspec.json.Encoder()
        self._pending: list[dict[str, Any]] = []
        self._writer: Any = None
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if self._fmt == "jsonl":
            self._f.write(self._encoder.encode(row) + b"\n")
            return
        self._pending.append(row)
        if len(self._pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._f, schema)
        self._writer.write_table(pa.Table.from_pylist(self._pending, schema=schema))
        self._pending = []

    def close(self) -> None:
        if self._fmt != "parquet":
            return
        if self._pending or self._writer is None:
            self._flush()  # an empty export is still a valid file with the schema
        self._writer.close()

    def __enter__(self) -> RowSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
