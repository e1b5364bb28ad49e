"""Keyword reports dropped into a landing zone (a folder or an S3 prefix) as CSV, CSV.gz, Parquet or Excel (.xlsx).

A file may hold one day or many; rows are split by date. Headers are matched to the contract's columns by name or
alias (case and spacing ignored), so both Google Ads UI exports ("Day", "Keyword ID", "Impr.", "Conv. value", with a
report-title preamble above the header, thousands separators and currency symbols) and plain snake_case files load.
Files are only ever read: never modified, moved or deleted, and never held whole: they stream in a chunk at a time
(see `read_landing_file`). A file of any other format is listed as refused, never skipped silently.

Google Ads tables of the BigQuery Data Transfer Service, exported from BigQuery, load too, told by their columns: the
keyword stats' segment rows are summed into a row per keyword-day, and a keyword attributes table in the same folder
gives them their text, match type, status and bids (see `_bigquery_table`).

Errors name the file, and the row and column where there is one. A row whose number cannot be read is kept, with the
problem in `parse_errors`, and validation quarantines it; a date that cannot be read, or dates in more than one format
within a file, fail the read, since the row cannot be placed in a partition without a guess.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import os
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.progress import Progress
from daily_bids.schema import (
    COLUMNS_BY_NAME,
    REPORT_COLUMNS,
    REQUIRED_COLUMNS,
    as_day,
    conform_raw,
    contract_table_markdown,
    empty_raw,
    raw_dtypes,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".xlsx")
MB = 1024 * 1024
HEADER_SEARCH_LINES = 30  # a preamble longer than this is not a report export
# Formats tried for the date column, one per file. Google Ads exports use ISO dates; spreadsheets use the others.
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%a, %b %d, %Y",
    "%Y%m%d",
)
_NULL_TOKENS = {"", "--", "-", " --", "n/a", "na", "null", "none"}
_SUMMARY_ROW = re.compile(r"^\s*total\b", re.IGNORECASE)  # Google Ads appends "Total: Account" lines
_CURRENCY_PREFIX = r"^([-+]?)\s*(?:[$€£¥]|[A-Z]{3}\s)\s*"
_CURRENCY_SUFFIX = r"\s*(?:[$€£¥%]|\s[A-Z]{3})$"
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
# The same three for text of printable ASCII and currency signs only (`_PLAIN_TEXT`), in RE2 for Arrow.
_PLAIN_TEXT = r"^[ -~€£¥]*$"
_PLAIN_CURRENCY_PREFIX = r"^([-+]?) *(?:[$€£¥]|[A-Z]{3} ) *"
_PLAIN_CURRENCY_SUFFIX = r" *(?:[$€£¥%]| [A-Z]{3})$"
_PLAIN_NUMBER = r"^[-+]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?$"
_LINE_END_BYTES = re.compile(rb"\r\n|\n|\r")
# How a file streams in. Memory holds the rows read so far, as typed columns, and about one chunk of text.
CHUNK_BYTES = 16 * MB  # text parsed at once
READ_BYTES = MB  # read from storage, and out of gzip, at once
ARROW_BLOCK_BYTES = 4 * MB  # Arrow parses a chunk in blocks of this size, on as many threads as there are cores
HEAD_BYTES = 4 * MB  # the header is looked for in no more than this
MAX_RECORD_CHUNKS = 4  # a record (quoted line breaks and all) longer than this many chunks goes to Python's csv
PYTHON_CHUNK_ROWS = 100_000  # rows per chunk when Python's csv module reads
MAX_LINE_CHARS = 16 * MB  # no report has a line this long; Python's csv module would hold it whole
PARQUET_BATCH_ROWS = 256 * 1024
GZIP_RATIO_FLOOR = 16 * MB  # a small file may inflate as much as it likes: it stays small


class LandingFileError(ValueError):
    """A landing file that cannot be read as a keyword report; the message names the file."""


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    mtime_ns: int
    refused: str = ""  # why the file is not read at all (a link or path leading outside the landing zone)


def normalize_header(header: str) -> str:
    return re.sub(r"\s+", " ", str(header).replace("\ufeff", "")).strip().lower()


def header_map(extra_aliases: dict[str, str] | None = None) -> dict[str, str]:
    """Normalized header → contract column: each column's name and aliases, plus any configured ones."""
    mapping = {normalize_header(c.name): c.name for c in REPORT_COLUMNS}
    mapping |= {normalize_header(alias): c.name for c in REPORT_COLUMNS for alias in c.aliases}
    for header, column in (extra_aliases or {}).items():
        if column not in COLUMNS_BY_NAME:
            raise ValueError(
                f"column mapping {header!r} → {column!r}: {column!r} is not a report column; "
                f"known: {list(COLUMNS_BY_NAME)}"
            )
        mapping[normalize_header(header)] = column
    return mapping


def list_landing_files(fs: pafs.FileSystem, root: str) -> list[LandingFile]:
    """Files under `root`, oldest first (later files restate earlier ones); hidden files (`.`, `_`) are skipped. A
    file of a format the landing zone does not read is listed as refused, so that it is named rather than skipped.
    On a local disk, a file that is a symbolic link, or resolves outside `root`, is refused too: the landing zone
    must not become a way to read any file the service can read."""
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = [
        LandingFile(info.path, info.size, info.mtime_ns or 0, _refusal(fs, root, info.path))
        for info in infos
        if info.type == pafs.FileType.File and not info.base_name.startswith((".", "_"))
    ]
    return sorted(files, key=lambda f: (f.mtime_ns, f.path))


def _refusal(fs: pafs.FileSystem, root: str, path: str) -> str:
    if not path.lower().endswith(SUFFIXES):
        suffix = "".join(PurePosixPath(path).suffixes) or "no extension"
        return f"{path}: not a format the landing zone reads ({suffix}); drop reports as {', '.join(SUFFIXES)}"
    if not isinstance(fs, pafs.LocalFileSystem):
        return ""  # object stores have no links
    if os.path.islink(path):
        return f"{path}: a symbolic link; landing files must be regular files inside {root}"
    real_root = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
        return f"{path}: resolves to {os.path.realpath(path)}, outside the landing zone {root}"
    return ""


@dataclass(frozen=True)
class ReadLimits:
    """How much a landing file may hold, checked while it streams in: a huge file or a gzip bomb stops early."""

    max_file_bytes: int = 1024 * MB
    max_uncompressed_bytes: int = 4096 * MB
    # Report CSV gzips about 10:1; a gzip bomb over 100:1 (up to 1,032:1). Checked past GZIP_RATIO_FLOOR out.
    max_gzip_ratio: int = 100


def read_landing_file(
    fs: pafs.FileSystem,
    path: str,
    extra_aliases: dict[str, str] | None = None,
    date_format: str | None = None,
    limits: ReadLimits = ReadLimits(),
    chunk_bytes: int = CHUNK_BYTES,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One landing file as raw report rows (contract columns plus source_file, source_row and parse_errors).

    The file streams in: CSV a chunk of `chunk_bytes` at a time, Parquet a batch at a time, so that memory holds the
    rows read so far (as typed columns) and one chunk, never the file's text.

    `frame.attrs["completeness"]` says what the file's own totals say about it: empty when they match the rows (or
    the file has none to compare), else the problem, e.g. a Google Ads export cut short before its Total line.

    With `log`, a CSV file's progress lines say the MB read of its size (as stored: a gzip file's compressed
    bytes), the rate and the time left. Parquet and Excel files log none: Parquet is typed and reads fast, and a
    workbook is read whole before it is parsed."""
    progress = None
    if log is not None:
        size = fs.get_file_info(path).size or 0
        progress = Progress(f"reading {os.path.basename(path)}", size / MB, log, unit="MB")
    raw, totals = _read_file(fs, path, header_map(extra_aliases), date_format, limits, chunk_bytes, progress=progress)
    if isinstance(raw, _BigQueryKeywords):
        return empty_raw()  # keyword attributes cover no day: they are joined onto the stats files beside them
    if isinstance(raw, _BigQueryStats):
        raw = raw.finish(_keyword_attributes(fs, path, date_format, limits, chunk_bytes))
    if raw is None:
        return empty_raw()
    raw.attrs["completeness"] = _completeness(raw, totals)
    return raw


def _read_file(
    fs: pafs.FileSystem,
    path: str,
    known: dict[str, str],
    date_format: str | None,
    limits: ReadLimits,
    chunk_bytes: int,
    keywords_only: bool = False,
    progress: Progress | None = None,
):
    """(rows, the totals the file states) of one file, the rows as raw report rows, or as a `_BigQueryStats` or
    `_BigQueryKeywords` for a table of the BigQuery Data Transfer Service (`keywords_only`: only those are read)."""
    lower = path.lower()
    if lower.endswith(".parquet"):
        return _read_parquet(fs, path, known, date_format, limits, keywords_only), False
    if lower.endswith(".xlsx"):
        cells, starts, totals = _xlsx_cells(path, _read_bytes(fs, path, limits), known, limits)
        if cells is None:
            return None, False
        builder = _RawBuilder(path, list(cells.columns), known, date_format)
        builder.add(cells.set_axis(range(cells.shape[1]), axis=1), starts)
        return builder.finish(), totals
    stored = _stored_blocks(fs, path, limits, progress)
    text = _utf8_blocks(path, _gunzipped(path, stored, limits) if lower.endswith(".gz") else stored)
    try:
        return _read_csv(path, text, known, date_format, chunk_bytes, keywords_only)
    finally:
        text.close()  # closes the file too when reading stops early


def _stored_blocks(
    fs: pafs.FileSystem, path: str, limits: ReadLimits, progress: Progress | None = None
) -> Iterator[bytes]:
    """The file's bytes as stored, a block at a time, refused as soon as they pass the file size limit. The text is
    parsed as it is read, a chunk at a time, so the MB read (to `progress`) say how far the parse has come."""
    size = 0
    try:
        # compression=None: the bytes as stored; gzip is undone in `_gunzipped`, where its errors can name the file.
        with fs.open_input_stream(path, compression=None) as source:
            while block := source.read(READ_BYTES):
                size += len(block)
                if size > limits.max_file_bytes:
                    raise _too_large(path, limits)
                if progress is not None:
                    progress.advance(len(block) / MB)
                yield block
    except OSError as error:
        raise LandingFileError(f"{path}: cannot be read ({error})") from error


def _too_large(path: str, limits: ReadLimits) -> LandingFileError:
    return LandingFileError(
        f"{path}: larger than {limits.max_file_bytes // MB:,} MB (BIDS_LANDING_MAX_FILE_MB); not read"
    )


def _too_unpacked(path: str, limits: ReadLimits) -> LandingFileError:
    return LandingFileError(
        f"{path}: decompresses to more than {limits.max_uncompressed_bytes // MB:,} MB "
        "(BIDS_LANDING_MAX_UNCOMPRESSED_MB); not read"
    )


def _read_bytes(fs: pafs.FileSystem, path: str, limits: ReadLimits) -> bytes:
    """The whole file (an Excel workbook is a zip archive, read from its end), within the file size limit."""
    return b"".join(_stored_blocks(fs, path, limits))


def _gunzipped(path: str, blocks: Iterator[bytes], limits: ReadLimits) -> Iterator[bytes]:
    """Gzip undone as the blocks arrive (members one after another), at most READ_BYTES out at a time. It stops as
    soon as the output passes the limit, or inflates far more than any report does (a bomb of repeated rows would
    otherwise be parsed into a frame up to the limit)."""
    out, used, inflater = 0, 0, None

    def counted(piece: bytes) -> bytes:
        nonlocal out
        out += len(piece)
        if out > limits.max_uncompressed_bytes:
            raise _too_unpacked(path, limits)
        if out > GZIP_RATIO_FLOOR and out > limits.max_gzip_ratio * used:
            raise LandingFileError(
                f"{path}: inflates more than {limits.max_gzip_ratio:,} times over ({out // MB:,} MB from "
                f"{used / MB:,.2f} MB), as a gzip bomb does and no report does; not read"
            )
        return piece

    try:
        for block in blocks:
            pending = block
            while pending:
                if inflater is None:
                    pending = pending.lstrip(b"\x00")  # padding after the last member
                    if not pending:
                        break
                    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                piece = inflater.decompress(pending, READ_BYTES)
                rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                used += len(pending) - len(rest)
                if piece:
                    yield counted(piece)
                # Input used up but the output cut at READ_BYTES: zlib may hold more, so it is asked again.
                while not rest and not inflater.eof and len(piece) == READ_BYTES:
                    piece = inflater.decompress(b"", READ_BYTES)
                    if piece:
                        yield counted(piece)
                    rest = inflater.unused_data if inflater.eof else b""
                pending = rest
                if inflater.eof:
                    inflater = None
    except zlib.error as error:
        raise LandingFileError(f"{path}: not a readable gzip file ({error})") from error
    if inflater is not None:
        raise LandingFileError(f"{path}: not a readable gzip file (it ends before its data does)")


def _utf8_blocks(path: str, blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The text as UTF-8 bytes, a block at a time. UTF-16 (Google Ads "CSV (Excel)" exports) is transcoded as it
    streams; anything else must be UTF-8 (a byte-order mark is dropped), checked as it streams."""
    blocks = iter(blocks)
    first = b""
    for block in blocks:  # enough to see a byte-order mark and whether the file is binary
        first += block
        if len(first) >= 4096:
            break
    rest = itertools.chain([first], blocks)
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        decoder = codecs.getincrementaldecoder("utf-16")()
        try:
            for block in rest:
                yield decoder.decode(block).encode("utf-8")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise LandingFileError(f"{path}: not readable UTF-16 text ({error.reason})") from error
        return
    if b"\x00" in first[:4096]:
        raise LandingFileError(f"{path}: binary content where a CSV report was expected")
    offset = 0
    if first.startswith(codecs.BOM_UTF8):
        first, offset = first[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        rest = itertools.chain([first], blocks)
    decoder = codecs.getincrementaldecoder("utf-8")()
    for block in rest:
        held = len(decoder.getstate()[0])  # bytes of a character cut at the previous block's end
        try:
            decoder.decode(block)
        except UnicodeDecodeError as error:
            raise LandingFileError(
                f"{path}: not UTF-8 or UTF-16 text (byte {offset - held + error.start}: {error.reason})"
            ) from error
        offset += len(block)
        yield block
    if decoder.getstate()[0]:
        raise LandingFileError(f"{path}: not UTF-8 or UTF-16 text (byte {offset}: the text ends inside a character)")


def _read_csv(
    path: str,
    blocks: Iterator[bytes],
    known: dict[str, str],
    date_format: str | None,
    chunk_bytes: int,
    keywords_only: bool = False,
) -> tuple[pd.DataFrame | _BigQueryStats | _BigQueryKeywords | None, list[StatedTotal] | None | bool]:
    """A CSV's rows and the totals it states about itself (see `_completeness`), from its UTF-8 blocks: the header is
    looked for in the first lines, then the records below it are parsed a chunk at a time."""
    head, more = _head(blocks)
    if not head.strip() and not (more and any(block.strip() for block in blocks)):
        return None, False  # an empty file covers no day; the day's volume check reports the gap
    # Lines end only at CR, LF or CRLF: str.splitlines() would also break at U+2028, U+0085 and other separators
    # that are valid inside a CSV field (their UTF-8 bytes hold no CR or LF).
    line_ends = [match.end() for match in _LINE_END_BYTES.finditer(head)]
    lines = [line.decode("utf-8") for line in _LINE_END_BYTES.split(head)[: len(line_ends) + (not more)]]
    candidates = [next(csv.reader([line], delimiter=_delimiter(line)), []) for line in lines[:HEADER_SEARCH_LINES]]
    # BigQuery writes its header on the first line; its tables are told by their columns, not the file's name.
    table = _bigquery_table(path, candidates[0] if candidates else [], date_format, keywords_only)
    if table is not None or keywords_only:
        if table is None:
            return None, False
        body = head[line_ends[0] :] if line_ends else b""
        chunks = _csv_chunks(
            path, itertools.chain([body], blocks), _delimiter(lines[0]), candidates[0], table.positions, 1, chunk_bytes
        )
        for cells, starts in chunks:
            table.add(cells, starts)
        return table, False
    header_index = _header_index(path, candidates, known, "line")
    header, delimiter = candidates[header_index], _delimiter(lines[header_index])
    body = head[line_ends[header_index] :] if header_index < len(line_ends) else b""
    builder = _RawBuilder(path, header, known, date_format)
    for cells, starts in _csv_chunks(
        path, itertools.chain([body], blocks), delimiter, header, builder.positions, header_index + 1, chunk_bytes
    ):
        builder.add(cells, starts)
    raw = builder.finish()
    # Google Ads UI exports have a title above the header and end with "Total: …" lines; plain files have neither.
    return raw, builder.stated_totals() if header_index > 0 else False


def _head(blocks: Iterator[bytes]) -> tuple[bytes, bool]:
    """The first bytes of the text, enough for HEADER_SEARCH_LINES whole lines (or HEAD_BYTES), and whether there
    is more."""
    head = b""
    while len(_LINE_END_BYTES.findall(head)) <= HEADER_SEARCH_LINES or head.endswith(b"\r"):
        if len(head) >= HEAD_BYTES:
            return head, True
        block = next(blocks, None)
        if block is None:
            return head, False
        head += block
    return head, True


def _csv_chunks(
    path: str,
    blocks: Iterator[bytes],
    delimiter: str,
    header: list[str],
    positions: list[int],
    header_line: int,
    chunk_bytes: int,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The records below the header, as (string cells of the columns at `positions`, the file line each record
    starts on), a chunk of about `chunk_bytes` at a time. Chunks end between records, found by counting quotes;
    Arrow's CSV parser reads each chunk. A chunk that is not plain RFC 4180 (a stray quote, a ragged row), and every
    chunk after it, is read by Python's csv module instead, which reads such files as the landing zone always has."""
    blocks = iter(blocks)
    pending, size, more, line, target = [], 0, True, header_line + 1, chunk_bytes
    while True:
        while more and size < target:
            block = next(blocks, None)
            if block is None:
                more = False
            else:
                pending.append(block)
                size += len(block)
        buffer = b"".join(pending)
        pending.clear()  # the blocks are in the buffer now
        if not buffer and not more:
            return
        scan = _Scan(buffer, delimiter)
        cut = scan.record_cut(target, at_end=not more)
        if cut == 0 and more and target < MAX_RECORD_CHUNKS * chunk_bytes:
            target += chunk_bytes  # a record longer than a chunk (or a stray quote): read on to its end
            continue
        chunk = memoryview(buffer)[:cut]  # not a copy
        parsed = _arrow_chunk(chunk, scan, delimiter, len(header), positions, line) if cut else None
        del chunk
        if parsed is None:
            rest = itertools.chain([buffer], blocks)
            yield from _python_chunks(path, rest, delimiter, header, positions, header_line, line)
            return
        cells, starts, lines = parsed
        if len(cells):
            yield cells, starts
        line += lines
        pending, size, target = [buffer[cut:]], len(buffer) - cut, chunk_bytes
        del buffer, scan  # before the next chunk is read, not after
        if not more and not size:
            return


class _Scan:
    """Where a buffer's lines end and which quotes open a field, as arrays, so that records are found without
    parsing: a line end outside quotes ends a record. That holds for RFC 4180 CSV (quotes open a field, close it
    or are doubled), which `rfc4180` checks; anything else goes to Python's csv module."""

    def __init__(self, data: bytes, delimiter: str):
        self.data = data
        # One byte mask at a time, each let go once its positions are taken: a chunk's worth, not several.
        raw = np.frombuffer(data, dtype=np.uint8)
        lf, cr = np.flatnonzero(raw == 10), np.flatnonzero(raw == 13)
        lone = cr[raw[np.minimum(cr + 1, len(raw) - 1)] != 10] if len(cr) else cr  # a CR at the end reads itself
        self.ends = np.sort(np.concatenate((lf, lone))) if len(lone) else lf  # the last byte of each line end
        crlf = (self.ends > 0) & (raw[self.ends] == 10) & (raw[np.maximum(self.ends - 1, 0)] == 13)
        self.end_starts = self.ends - crlf  # the first byte of each line end
        self.quotes = np.flatnonzero(raw == ord('"'))
        self.outside = np.searchsorted(self.quotes, self.ends) % 2 == 0  # line ends outside quotes end records
        self.raw, self.delimiter = raw, ord(delimiter)

    def record_cut(self, target: int, at_end: bool) -> int:
        """Where a chunk of about `target` bytes ends: after the last whole record that ends within it, else after
        the first that ends at all; at the end of the text, the rest if it fits. 0 if no record ends yet."""
        ends = self.ends[self.outside]
        if not at_end and len(ends) and ends[-1] == len(self.data) - 1 and self.data.endswith(b"\r"):
            ends = ends[:-1]  # a CR at the very end may be the first half of a CRLF
        if at_end and len(self.data) <= target:
            return len(self.data)
        within = ends[ends < target]
        if len(within) or len(ends):
            return int(within[-1] if len(within) else ends[0]) + 1
        return len(self.data) if at_end else 0

    def rfc4180(self, stop: int) -> bool:
        """Whether every quote before `stop` opens a field (at its start), closes it (at its end) or is doubled."""
        quotes = self.quotes[self.quotes < stop]
        if len(quotes) % 2:
            return False  # a quoted field left open
        bounds = np.array([self.delimiter, 10, 13, ord('"')], dtype=np.uint8)
        opening, closing = quotes[0::2], quotes[1::2]
        before = self.raw[np.maximum(opening - 1, 0)]
        after = self.raw[np.minimum(closing + 1, stop - 1)]
        return bool(
            (np.isin(before, bounds) | (opening == 0)).all() and (np.isin(after, bounds) | (closing == stop - 1)).all()
        )


def _arrow_chunk(
    chunk: memoryview, scan: _Scan, delimiter: str, width: int, positions: list[int], first_line: int
) -> tuple[pd.DataFrame, np.ndarray, int] | None:
    """A chunk of whole records parsed by Arrow: (cells, the line each record starts on, the lines in the chunk),
    or None when Arrow would not read it as Python's csv module does."""
    stop = len(chunk)
    if not scan.rfc4180(stop):
        return None
    inside = scan.ends < stop
    ends, end_starts, outside = scan.ends[inside], scan.end_starts[inside], scan.outside[inside]
    starts = np.concatenate(([0], ends[outside] + 1))
    stops = np.concatenate((end_starts[outside], [stop]))
    nonempty = stops > starts  # Arrow skips empty lines; they still count as lines
    starts, stops = starts[nonempty], stops[nonempty]
    names = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(chunk),
            read_options=pacsv.ReadOptions(column_names=names, block_size=ARROW_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=bool((~outside).any()), ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                include_columns=[names[p] for p in positions],
            ),
        )
    except pa.ArrowInvalid:  # a row of another width, or text Arrow splits otherwise: Python's csv module decides
        return None
    if table.num_rows != len(starts):
        return None
    # A record of blank fields only is skipped like a blank line (it has no ASCII letter or digit, so few are looked at).
    keep = np.ones(len(starts), dtype=bool)
    for index in np.flatnonzero(_maybe_blank(scan.raw[:stop], starts, delimiter)):
        text = bytes(chunk[starts[index] : stops[index]]).decode("utf-8")
        keep[index] = any(
            field.strip() for field in next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        )
    if not keep.all():
        table, starts = table.filter(pa.array(keep)), starts[keep]
    lines = first_line + np.searchsorted(ends, starts)
    cells = table.to_pandas().set_axis(positions, axis=1)
    return cells, lines.astype("int64"), len(ends)


def _maybe_blank(raw: np.ndarray, starts: np.ndarray, delimiter: str) -> np.ndarray:
    """Records (from each start to the next) with no ASCII byte other than the delimiter, quotes and whitespace:
    the only ones that can be blank."""
    filler = np.zeros(256, dtype=bool)
    filler[[ord(delimiter), ord('"'), 9, 10, 11, 12, 13, 32]] = True
    filler[128:] = True  # non-ASCII whitespace (a no-break space) is blank to str.strip()
    if not len(starts):
        return np.zeros(0, dtype=bool)
    return np.logical_and.reduceat(filler[raw], starts)


def _python_chunks(
    path: str,
    blocks: Iterator[bytes],
    delimiter: str,
    header: list[str],
    positions: list[int],
    header_line: int,
    first_line: int,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The records from `first_line` on, read by Python's csv module line by line, PYTHON_CHUNK_ROWS at a time.
    It reads quoted fields that span lines (CR included), pads short rows, skips blank ones and refuses a row wider
    than the header."""
    text = io.TextIOWrapper(io.BufferedReader(_BlockReader(blocks)), encoding="utf-8", newline="")

    def lines():
        while line := text.readline(MAX_LINE_CHARS):
            if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                raise LandingFileError(f"{path}: a line longer than {MAX_LINE_CHARS // MB} MB: not a keyword report")
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    records, starts, line, width = [], [], 0, len(header)
    try:
        for record in reader:
            if any(field.strip() for field in record):  # blank lines are skipped, but still counted
                if len(record) > width:
                    raise LandingFileError(
                        f"{path}: line {first_line + line}: {len(record)} fields where the header "
                        f"on line {header_line} has {width}"
                    )
                records.append([(record[p] if p < len(record) else "") for p in positions])
                starts.append(first_line + line)
                if len(records) == PYTHON_CHUNK_ROWS:
                    yield _cells(records, positions), np.asarray(starts, dtype="int64")
                    records, starts = [], []
            line = reader.line_num
    except csv.Error as error:
        raise LandingFileError(
            f"{path}: not a well-formed CSV below the header on line {header_line} ({error})"
        ) from error
    if records:
        yield _cells(records, positions), np.asarray(starts, dtype="int64")


def _cells(records: list[list[str]], positions: list[int]) -> pd.DataFrame:
    columns = zip(*records) if records else [()] * len(positions)
    return pd.DataFrame({p: pd.Series(list(values), dtype="str") for p, values in zip(positions, columns)})


class _BlockReader(io.RawIOBase):
    """Blocks of bytes as a binary stream, for io.TextIOWrapper."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks, self._block, self._offset = blocks, memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._offset == len(self._block):
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._block, self._offset = memoryview(block), 0
        size = min(len(buffer), len(self._block) - self._offset)
        buffer[:size] = self._block[self._offset : self._offset + size]
        self._offset += size
        return size


class _RawBuilder:
    """Raw rows built a chunk at a time: each chunk's cells are parsed into typed columns as it arrives and only
    those are kept. The day column is kept as codes of its distinct values, read at the end, since a file must use
    one date format throughout; the Total lines are kept aside for `_stated_totals`."""

    def __init__(self, path: str, header: list[str], known: dict[str, str], date_format: str | None):
        self.path, self.header, self.known, self.date_format = path, header, known, date_format
        self.columns: dict[int, str] = {}  # position in the file → contract column (its first header)
        for position, name in enumerate(header):
            column = known.get(normalize_header(name))
            if column is not None and column not in self.columns.values():
                self.columns[position] = column
        missing = [c for c in REQUIRED_COLUMNS if c not in self.columns.values()]
        if missing:
            raise LandingFileError(
                f"{path}: missing required column(s) {missing}; found {list(header)}. "
                f"Expected schema:\n{contract_table_markdown()}"
            )
        # The first column is read too: a Total line is one whose first cell says so.
        self.positions = sorted({0, *self.columns})
        self.parts: dict[str, list] = {name: [] for name in raw_dtypes() if name != "source_file"}
        self.totals: list[pd.DataFrame] = []
        self.dates: dict = {}  # distinct value of the date column → its code
        self.date_rows: list[int] = []  # the row on which each distinct date first appears
        self.date_counts: list[int] = []

    def add(self, cells: pd.DataFrame, rows: np.ndarray) -> None:
        """Cells (columns named by their position in the file) and the file row of each."""
        rows = np.asarray(rows, dtype="int64")
        self.totals.append(cells.loc[_is_summary(cells[0]), self.positions])
        frame = cells[list(self.columns)].set_axis(list(self.columns.values()), axis=1)
        summary = _is_summary(frame.iloc[:, 0]) | _is_summary(frame["date"])
        if summary.any():
            frame, rows = frame.loc[~summary].reset_index(drop=True), rows[~summary]
        # What is kept of a chunk is kept in Arrow's memory pool, which gives it back once the frame is joined; the C
        # heap, where each chunk's short-lived arrays come and go, would keep it (600 MB for a 10M-row file).
        self.parts["date"].append(_pooled(self._date_codes(frame["date"], rows)))
        problems = pd.Series("", index=frame.index, dtype=object)
        for column in REPORT_COLUMNS:
            if column.name == "date" or column.name not in frame.columns:
                continue
            values = frame[column.name]
            if column.kind == "text":
                # Kept exactly as reported ("none", "NA", "-" and surrounding spaces included); only an empty field is
                # missing text. Google's "--" placeholder stands for an empty cell, not for a keyword.
                text = values.astype("string")
                self.parts[column.name].append(text.mask(text.isin(["", "--"])).array)
                continue
            if column.kind == "share":
                parsed, bad = _parse_share(values)
            else:
                parsed, bad = _parse_numbers(values, integral=column.kind in ("id", "count") and not column.fractional)
            self.parts[column.name].append(_pooled(parsed.array))
            if bad.any():
                problems[bad] += column.name + "=" + values[bad].astype(str).str.slice(0, 40).map(repr) + "; "
        self.parts["source_row"].append(_pooled(rows))
        errors = problems != ""
        if errors.any():
            problems = problems.str.rstrip("; ").where(errors, None)
        else:  # the usual chunk: nothing to join
            problems = pd.Series(pd.NA, index=frame.index, dtype=object)
        self.parts["parse_errors"].append(problems.astype("string").array)

    def _date_codes(self, values: pd.Series, rows: np.ndarray) -> np.ndarray:
        codes, distinct = pd.factorize(values, use_na_sentinel=False)
        _, first = np.unique(codes, return_index=True)
        counts = np.bincount(codes, minlength=len(distinct))
        known = np.empty(len(distinct), dtype="int64")
        for index, value in enumerate(distinct):
            code = self.dates.setdefault(value, len(self.dates))
            if code == len(self.date_rows):
                self.date_rows.append(int(rows[first[index]]))
                self.date_counts.append(0)
            self.date_counts[code] += int(counts[index])
            known[index] = code
        return known[codes]

    def finish(self) -> pd.DataFrame:
        """The rows as one frame with the raw dtypes, each column joined from its chunks (and the chunks let go) in
        turn, so that the peak is the frame and a column's chunks, not two frames."""
        distinct = pd.Series(list(self.dates), dtype=None if self.dates else str)
        days = _parse_dates(
            self.path, distinct, np.asarray(self.date_rows, dtype="int64"), self.date_format, self.date_counts
        ).to_numpy()
        size = sum(len(part) for part in self.parts["source_row"])
        out = {}
        for name, dtype in raw_dtypes().items():
            parts = self.parts.pop(name, [])
            if name in ("date", "source_row"):
                values = pa.chunked_array(parts, pa.int64()).to_numpy()
                column = pd.Series(days[values] if name == "date" else values, dtype=dtype)
            elif name == "source_file":
                # Built as the large_string pandas keeps, so that it is not built twice.
                column = pd.Series(pd.arrays.ArrowStringArray(pa.repeat(pa.scalar(self.path, pa.large_string()), size)))
            elif not parts:
                column = pd.Series(pd.NA, index=range(size), dtype=dtype)
            elif dtype == "Float64":
                joined = pa.chunked_array(parts, pa.float64())
                mask = joined.is_null().to_numpy(zero_copy_only=False)
                column = pd.Series(pd.arrays.FloatingArray(joined.fill_null(0.0).to_numpy(), mask))
            else:  # text: Arrow's chunks joined without a copy
                column = pd.concat([pd.Series(part) for part in parts], ignore_index=True)
            del parts
            pa.default_memory_pool().release_unused()  # the column's chunks, given back before the next is joined
            out[name] = column if column.dtype == dtype else column.astype(dtype)
        return pd.DataFrame(out, copy=False)

    def stated_totals(self) -> list[StatedTotal] | None:
        lines = pd.concat(self.totals) if self.totals else pd.DataFrame(columns=list(self.columns))
        header = [self.header[p] for p in lines.columns]
        return _stated_totals(lines.set_axis(header, axis=1), self.known)


def _pooled(values) -> pa.Array:
    """`values` copied into Arrow's memory pool (pa.array alone wraps a NumPy buffer where it lies)."""
    array = pa.array(values)
    return pa.concat_arrays([array, pa.array([], type=array.type)])


def _read_parquet(
    fs: pafs.FileSystem,
    path: str,
    known: dict[str, str],
    date_format: str | None,
    limits: ReadLimits,
    keywords_only: bool = False,
) -> pd.DataFrame | _BigQueryStats | _BigQueryKeywords | None:
    """A Parquet file, a batch of rows at a time (Parquet is typed: numbers and days need no parsing)."""
    try:
        with fs.open_input_file(path) as source:
            if source.size() > limits.max_file_bytes:
                raise _too_large(path, limits)
            parquet = pq.ParquetFile(source)
            metadata = parquet.metadata
            unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
            if unpacked > limits.max_uncompressed_bytes:
                raise _too_unpacked(path, limits)
            table = _bigquery_table(path, parquet.schema_arrow.names, date_format, keywords_only)
            if table is not None or keywords_only:
                if table is not None:
                    table.read_parquet(parquet)
                return table
            builder = _RawBuilder(path, parquet.schema_arrow.names, known, date_format)
            row = 1
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                cells = batch.to_pandas().set_axis(range(batch.num_columns), axis=1)
                builder.add(cells[builder.positions], np.arange(row, row + batch.num_rows))
                row += batch.num_rows
    except (pa.ArrowException, OSError) as error:
        raise LandingFileError(f"{path}: not a readable Parquet file ({type(error).__name__}: {error})") from error
    return builder.finish()


def _header_index(path: str, candidates: list[list[str]], known: dict[str, str], unit: str) -> int:
    """Which of the first rows (`candidates`, as fields) is the header: the first with every required column."""
    best = (0, None, [])
    for index, fields in enumerate(candidates[:HEADER_SEARCH_LINES]):
        mapped = {known[normalize_header(f)] for f in fields if normalize_header(f) in known}
        if set(REQUIRED_COLUMNS) <= mapped:
            return index
        if len(mapped) > best[0]:
            best = (len(mapped), index, fields)
    if best[0] >= 2:  # a header row, short of required columns
        missing = sorted(
            set(REQUIRED_COLUMNS) - {known[normalize_header(f)] for f in best[2] if normalize_header(f) in known}
        )
        raise LandingFileError(
            f"{path}: {unit} {best[1] + 1} looks like the header but lacks required column(s) {missing}; "
            f"found {best[2]}. Expected schema:\n{contract_table_markdown()}"
        )
    raise LandingFileError(
        f"{path}: no header row with the required columns {list(REQUIRED_COLUMNS)} in the first "
        f"{HEADER_SEARCH_LINES} {unit}s; is it a keyword report? Expected schema:\n{contract_table_markdown()}"
    )


def _xlsx_cells(
    path: str, data: bytes, known: dict[str, str], limits: ReadLimits
) -> tuple[pd.DataFrame | None, np.ndarray | None, list[StatedTotal] | None | bool]:
    """An Excel download (the first sheet) as a CSV's records are read: string cells from the header down, the sheet
    row of each record, and the totals the export states. Read in openpyxl's read-only mode, row by row."""
    # Imported here: only a landing zone with Excel files needs it.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # The sizes the archive declares; zipfile stops at them (and fails the CRC) if a member inflates further.
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > limits.max_uncompressed_bytes:
            raise _too_unpacked(path, limits)
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            if not workbook.worksheets:
                raise LandingFileError(f"{path}: an Excel workbook without a worksheet")
            sheet = workbook.worksheets[0]
            rows = [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
            first_row = sheet.min_row or 1
        finally:
            workbook.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
        raise LandingFileError(
            f"{path}: not a readable Excel (.xlsx) file ({type(error).__name__}: {error})"
        ) from error
    if not any(any(field.strip() for field in row) for row in rows):
        return None, None, False  # an empty sheet covers no day, like an empty CSV
    header_index = _header_index(path, rows[:HEADER_SEARCH_LINES], known, "row")
    header = rows[header_index]
    while header and not header[-1].strip():  # a sheet's rows are as wide as its widest one
        header = header[:-1]
    records, starts = [], []
    for number, row in enumerate(rows[header_index + 1 :], start=first_row + header_index + 1):
        if not any(field.strip() for field in row):
            continue
        if any(field.strip() for field in row[len(header) :]):
            raise LandingFileError(
                f"{path}: row {number}: a value beyond the {len(header)} columns of the header on row "
                f"{first_row + header_index}"
            )
        records.append(row[: len(header)] + [""] * (len(header) - len(row)))
        starts.append(number)
    cells = pd.DataFrame(records, columns=header, dtype=str)
    starts = np.asarray(starts, dtype="int64")
    totals = _stated_totals(cells, known) if header_index > 0 else False
    return cells, starts, totals


def _cell_text(value) -> str:
    """A spreadsheet cell as the CSV export writes it: ISO dates, numbers in full (no exponent), empty for none."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-")
    return str(value)


@dataclass(frozen=True)
class StatedTotal:
    """A "Total: …" line of an export: what it states of the rows it totals, and how the rows must compare with it."""

    label: str  # as written, e.g. "Total: Keywords"
    values: dict[str, float]  # the impressions and clicks it states (a "--" states nothing)
    exact: bool  # True: the rows must add up to it; False: they may fall short of it but never pass it


def _stated_totals(cells: pd.DataFrame, known: dict[str, str]) -> list[StatedTotal] | None:
    """The totals a Google Ads export states about its keyword rows; None when it has no Total line at all, which
    for an export means it was cut short.

    The keyword-level total ("Total: Keywords", or "Total: Filtered keywords" when the view was filtered) totals
    exactly the rows, so they must add up to it; with a filtered total, the unfiltered one is a bound. "Total: Account"
    also counts other campaign types and removed keywords: the rows may fall short of it, never pass it. Campaign-type
    totals ("Total: Search", "Total: Display", …) total other rows than these, so they say nothing about them."""
    first = cells.iloc[:, 0].astype(str) if len(cells.columns) else pd.Series(dtype=str)
    is_total = first.str.match(_SUMMARY_ROW).to_numpy()
    if not is_total.any():
        return None
    lines = cells[is_total]
    levels = [_total_level(label) for label in lines.iloc[:, 0]]
    exact_level = "filtered keywords" if "filtered keywords" in levels else "keywords"
    totals = []
    for level, (_, values) in zip(levels, lines.iterrows()):
        if level is None:
            continue
        stated = {}
        for header, value in values.items():
            column = known.get(normalize_header(header))
            if column in ("impressions", "clicks"):
                number, bad = _parse_numbers(pd.Series([value]), integral=True)
                if not bad[0] and pd.notna(number.iloc[0]):
                    stated[column] = float(number.iloc[0])
        totals.append(StatedTotal(str(values.iloc[0]).strip(), stated, exact=level == exact_level))
    return totals


def _total_level(label: str) -> str | None:
    """What a Total line totals: "filtered keywords", "keywords", "account" (a bare "Total" too: it cannot be less
    than the rows above it), or None (a campaign type)."""
    what = _SUMMARY_ROW.sub("", normalize_header(label)).strip(" :")
    if "keyword" in what:
        return "filtered keywords" if "filter" in what else "keywords"
    return "account" if what in ("", "account") else None


def _completeness(raw: pd.DataFrame, totals: list[StatedTotal] | None | bool) -> str:
    """Empty when the file agrees with itself; else what is wrong. `totals` is False for files that state none
    (plain CSV, Parquet), None for an export without its Total lines, else the totals its Total lines state."""
    if totals is False:
        return ""
    if totals is None:
        return "a Google Ads export without its Total line: cut short, or still being written"
    for total in totals:
        for column, stated in total.values.items():
            rows = float(pd.to_numeric(raw[column], errors="coerce").sum())
            # A keyword-level total must be met exactly; the account's may exceed the rows, but never fall short.
            if (abs(rows - stated) > 0.5) if total.exact else (rows > stated + 0.5):
                return f"its Total line states {stated:,.0f} {column} but its rows sum to {rows:,.0f}"
    return ""


def _delimiter(line: str) -> str:
    return "\t" if line.count("\t") > line.count(",") else ","


def _parse_numbers(values: pd.Series, integral: bool) -> tuple[pd.Series, np.ndarray]:
    """Numbers from strings like `1,234`, `$1,234.56`, `€ 12.50`, `EUR 3.10`, `12%`; nulls for `--` and blanks."""
    if pd.api.types.is_numeric_dtype(values):  # Parquet: already typed
        parsed = pd.to_numeric(values, errors="coerce").astype("Float64")
        return parsed, np.zeros(len(values), dtype=bool)
    text = values.astype(str).str.strip()
    is_null = text.str.lower().isin(_NULL_TOKENS).to_numpy(dtype=bool)
    arrow = pa.array(text)
    # Arrow's RE2 reads printable ASCII and currency signs as Python's re does (there `\s` is a space and `\d` a
    # digit); the rest (tabs, Unicode spaces or digits) goes through Python's re.
    number, well_formed = _arrow_numbers(arrow)
    other = np.flatnonzero(~pc.match_substring_regex(arrow, _PLAIN_TEXT).to_numpy(zero_copy_only=False))
    if len(other):
        number[other], well_formed[other] = _python_numbers(text.iloc[other])
    if integral:
        fractional = well_formed & (number != np.round(number))
        well_formed &= ~fractional
    bad = ~is_null & ~well_formed
    return pd.Series(np.where(well_formed, number, np.nan), index=values.index).astype("Float64"), bad


def _arrow_numbers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the number, whether the text is one) for text of printable ASCII and currency signs."""
    cleaned = pc.replace_substring_regex(text, _PLAIN_CURRENCY_PREFIX, r"\1")
    cleaned = pc.replace_substring(pc.replace_substring_regex(cleaned, _PLAIN_CURRENCY_SUFFIX, ""), " ", "")
    well_formed = pc.match_substring_regex(cleaned, _PLAIN_NUMBER)
    # Only well-formed text is cast (a sign, digits, a point), which Arrow reads as Python's float() does.
    digits = pc.replace_substring(pc.if_else(well_formed, cleaned, pa.scalar(None, cleaned.type)), ",", "")
    number = pc.cast(digits, pa.float64()).to_numpy(zero_copy_only=False)
    return np.array(number, dtype="float64"), np.array(well_formed.to_numpy(zero_copy_only=False), dtype=bool)


def _python_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """As `_arrow_numbers`, with Python's re, for any text."""
    # Only currency symbols or codes and a percent sign are stripped; "1O" (a letter O) must stay an error.
    cleaned = (
        text.str.replace(_CURRENCY_PREFIX, r"\1", regex=True)
        .str.replace(_CURRENCY_SUFFIX, "", regex=True)
        .str.replace(" ", "", regex=False)
    )
    well_formed = cleaned.str.match(_NUMBER).to_numpy(dtype=bool, na_value=False).copy()
    parsed = pd.to_numeric(cleaned.where(well_formed).str.replace(",", "", regex=False), errors="coerce")
    return parsed.to_numpy(dtype="float64", na_value=np.nan), well_formed


def _parse_share(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Shares as fractions: `45.2%` is 0.452 and a bare `0.452` stays; Google's `< 10%` and `> 90%` (its bounds for
    shares it does not state) read as the bound."""
    if pd.api.types.is_numeric_dtype(values):
        return _parse_numbers(values, integral=False)
    text = values.astype(str).str.strip()
    percent = text.str.endswith("%").to_numpy()
    # The spaces after the bound go with the strip in `_parse_numbers`.
    parsed, bad = _parse_numbers(text.str.replace(r"^[<>]", "", regex=True), integral=False)
    return parsed.mask(percent, parsed / 100.0), bad


def _is_summary(values: pd.Series) -> np.ndarray:
    """Which cells start a Total line; Python's re reads only the few that hold "total" at all."""
    text = values.astype(str)
    summary = text.str.contains("total", case=False, regex=False).to_numpy(dtype=bool).copy()
    if summary.any():
        maybe = np.flatnonzero(summary)
        summary[maybe] = text.iloc[maybe].str.match(_SUMMARY_ROW).to_numpy(dtype=bool)
    return summary


def _parse_dates(path: str, values: pd.Series, rows: np.ndarray, date_format: str | None, counts=None) -> pd.Series:
    """The day of each value; `rows` the file row of each, `counts` how many rows hold each (the values may be a
    file's distinct dates, each with the row it first appears on)."""
    counts = np.ones(len(values), dtype="int64") if counts is None else np.asarray(counts, dtype="int64")
    if pd.api.types.is_datetime64_any_dtype(values):
        return as_day(values)
    if len(values) and isinstance(values.iloc[0], dt.date):
        return as_day(pd.to_datetime(values))
    text = values.astype(str).str.strip()
    empty = text.str.lower().isin(_NULL_TOKENS).to_numpy()
    if empty.any():
        first = int(np.argmax(empty))
        raise LandingFileError(f"{path}: row {rows[first]}: column date is empty; every row needs its day")
    formats = [date_format] if date_format else list(DATE_FORMATS)
    parsed = {f: pd.to_datetime(text, format=f, errors="coerce") for f in formats}
    complete = [f for f, p in parsed.items() if p.notna().all()]
    if len(complete) == 1 or (complete and len({tuple(parsed[f].dropna()) for f in complete}) == 1):
        return as_day(parsed[complete[0]])
    if len(complete) > 1:
        raise LandingFileError(
            f"{path}: dates such as {text.iloc[0]!r} read as more than one format {complete}; "
            f"set the landing date format (BIDS_LANDING_DATE_FORMAT) to say which"
        )
    readable = {f: p.notna().to_numpy() for f, p in parsed.items() if p.notna().any()}
    unreadable = ~np.logical_or.reduce(list(readable.values())) if readable else np.ones(len(text), dtype=bool)
    if unreadable.any():
        first = int(np.argmax(unreadable))
        raise LandingFileError(
            f"{path}: row {rows[first]}: column date: {text.iloc[first]!r} is not a date in any known format {formats}"
        )
    examples = []
    for f, ok in sorted(readable.items(), key=lambda item: -counts[item[1]].sum())[:2]:
        first = int(np.argmax(ok))
        examples.append(f"row {rows[first]} {text.iloc[first]!r} ({f})")
    raise LandingFileError(
        f"{path}: column date mixes formats, e.g. {' and '.join(examples)}; a file must use one date format"
    )


# The BigQuery Data Transfer Service's Google Ads tables, exported from BigQuery as CSV (gzipped or not) or Parquet.
# A table is told by its columns: the keyword stats (`ads_KeywordBasicStats_<customer_id>`, `ads_KeywordStats_…`) by
# `segments_date`, `ad_group_criterion_criterion_id` and `metrics_…`; the keyword attributes (`ads_Keyword_…`) by
# `ad_group_criterion_criterion_id`, `ad_group_id` and `ad_group_criterion_keyword_…` without a `segments_date`.
_BQ_DATE, _BQ_CRITERION, _BQ_AD_GROUP, _BQ_DATA_DATE = (
    "segments_date",
    "ad_group_criterion_criterion_id",
    "ad_group_id",
    "_data_date",
)
# Stats summed over a keyword-day's segment rows: BigQuery column → (contract column, how it is written).
_BQ_SUMS = {
    "metrics_impressions": ("impressions", "integer"),
    "metrics_clicks": ("clicks", "integer"),
    "metrics_cost_micros": ("cost", "micros"),
    "metrics_conversions": ("conversions", "number"),
    "metrics_conversions_value": ("conversion_value", "number"),
}
_BQ_REQUIRED_SUMS = ("metrics_impressions", "metrics_clicks")
# Text a row carries as it is (the same on every segment row of a keyword-day): BigQuery column → contract column.
_BQ_TEXT = {
    "campaign_id": "campaign_id",
    "campaign_name": "campaign",
    "ad_group_name": "ad_group",
    "ad_group_criterion_keyword_text": "keyword",
    "ad_group_criterion_keyword_match_type": "match_type",
    "ad_group_criterion_status": "status",
}
_BQ_KEYWORD_TEXT = ("ad_group_criterion_keyword_text", "ad_group_criterion_keyword_match_type")
# The keyword's bid: its effective one (its own, or its ad group's default); else its own.
_BQ_BIDS = ("ad_group_criterion_effective_cpc_bid_micros", "ad_group_criterion_cpc_bid_micros")
# Google's enum spellings as the contract's; UNKNOWN and UNSPECIFIED say nothing, so they are read as empty.
_GOOGLE_ENUMS = {
    "EXACT": "Exact",
    "PHRASE": "Phrase",
    "BROAD": "Broad",
    "ENABLED": "Enabled",
    "PAUSED": "Paused",
    "REMOVED": "Removed",
    "UNKNOWN": None,
    "UNSPECIFIED": None,
}
_MICROS = 1_000_000
_INTEGER_TEXT = r"^[-+]?[0-9]{1,18}$"  # BigQuery writes INT64 plainly; 19 digits could pass int64
_ERRORS_SHOWN = 5  # per keyword-day; the rest are counted
_REDUCE_EVERY = 8  # chunks' partial sums held before they are summed together


def _bigquery_table(path: str, header: list[str], date_format: str | None, keywords_only: bool = False):
    """A reader for the BigQuery Data Transfer table whose columns are `header`, or None if it is not one (or, with
    `keywords_only`, not a keyword attributes table)."""
    names: dict[str, int] = {}
    for position, name in enumerate(header):
        names.setdefault(normalize_header(name), position)
    if _BQ_CRITERION not in names:
        return None
    if _BQ_DATE not in names and _BQ_AD_GROUP in names and any(name in names for name in _BQ_KEYWORD_TEXT):
        return _BigQueryKeywords(path, names, date_format)
    if keywords_only:
        return None
    if _BQ_DATE in names and any(name.startswith("metrics_") for name in names):
        if "segments_click_type" in names:
            raise LandingFileError(
                f"{path}: a BigQuery Data Transfer keyword stats table segmented by segments_click_type "
                "(ads_KeywordStats_…): Google counts an impression once for each click type it could take, so its "
                "impressions cannot be summed into a day's. Export ads_KeywordBasicStats_<customer_id> instead"
            )
        missing = [name for name in _BQ_REQUIRED_SUMS if name not in names]
        if missing:
            raise LandingFileError(
                f"{path}: a BigQuery Data Transfer keyword table without {missing}; found {list(header)}. "
                "Export ads_KeywordBasicStats_<customer_id> (impressions, clicks, cost, conversions)"
            )
        return _BigQueryStats(path, names, date_format)
    return None


def _text_cells(values: pd.Series) -> pd.Series:
    """Cells as stripped text, empty where null."""
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _bq_integers(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the integers, which are empty, which are not integers) of text; the integers are 0 where there is none."""
    empty = (text == "").to_numpy()
    well_formed = pc.match_substring_regex(pa.array(text, type=pa.string()), _INTEGER_TEXT).to_numpy(
        zero_copy_only=False
    )
    values = np.zeros(len(text), dtype="int64")
    if well_formed.any():
        values[well_formed] = text[well_formed].astype("int64").to_numpy()
    return values, empty, ~empty & ~well_formed


def _bq_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As `_bq_integers`, for FLOAT64 (a decimal or exponent notation, never inf or NaN)."""
    empty = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~empty, "0"), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~empty & ~np.isfinite(values)
    return np.where(empty | bad, 0.0, values), empty, bad


def _google_enum(values: pd.Series) -> pd.Series:
    """Google's EXACT, PAUSED… as the contract's Exact, Paused…; other spellings as they are."""
    text = values.astype("string")
    upper = text.str.strip().str.upper()
    known = upper.isin(list(_GOOGLE_ENUMS)).fillna(False).to_numpy(dtype=bool)
    return text.mask(known, upper.map(_GOOGLE_ENUMS).astype("string"))


def _arrow_text(array: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column as the text BigQuery's CSV export writes: INT64 and DATE exactly, FLOAT64 in full."""
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    return pc.cast(array, pa.string())


class _BigQueryTable:
    """Cells of a BigQuery export, by column name, a chunk (CSV) or batch (Parquet) at a time."""

    wanted: tuple[str, ...] = ()

    def __init__(self, path: str, names: dict[str, int], date_format: str | None):
        self.path, self.date_format = path, date_format
        self.columns = {name: names[name] for name in self.wanted if name in names}
        self.positions = sorted(set(self.columns.values()))

    def read_parquet(self, parquet: pq.ParquetFile) -> None:
        names = parquet.schema_arrow.names
        row = 1
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[names[p] for p in self.positions]):
            cells = pd.DataFrame(
                {p: _arrow_text(pa.chunked_array([batch.column(i)])).to_pandas() for i, p in enumerate(self.positions)}
            )
            self.add(cells, np.arange(row, row + batch.num_rows))
            row += batch.num_rows

    def cells(self, cells: pd.DataFrame) -> dict[str, pd.Series]:
        return {name: _text_cells(cells[position]).reset_index(drop=True) for name, position in self.columns.items()}

    def add(self, cells: pd.DataFrame, rows: np.ndarray) -> None:
        raise NotImplementedError


_KEYS = ["d", "g", "k"]  # a keyword-day: segments_date, ad_group_id and criterion ID, as written


class _BigQueryStats(_BigQueryTable):
    """A keyword stats table: its segment rows (device, network, slot…) summed into a row per keyword-day as they
    stream in. Each chunk's rows are summed, and the chunks' sums summed again every few chunks, so memory holds
    about one row per keyword-day. Counts and micros are summed as integers, so cost is exact."""

    wanted = (_BQ_DATE, _BQ_CRITERION, _BQ_AD_GROUP, *_BQ_SUMS, *_BQ_TEXT)

    def __init__(self, path: str, names: dict[str, int], date_format: str | None):
        super().__init__(path, names, date_format)
        self.sums = {name: _BQ_SUMS[name] for name in _BQ_SUMS if name in self.columns}
        self.text = {name: _BQ_TEXT[name] for name in _BQ_TEXT if name in self.columns}
        self.partials: list[pd.DataFrame] = []
        self.summed = 0  # keyword-days after the last sum of the partial sums
        self.errors: list[pd.DataFrame] = []  # (keyword-day, row, message) of each value that could not be read

    def add(self, cells: pd.DataFrame, rows: np.ndarray) -> None:
        cells = self.cells(cells)
        rows = np.asarray(rows, dtype="int64")
        frame = {
            "d": cells[_BQ_DATE],
            "g": cells.get(_BQ_AD_GROUP, pd.Series("", index=range(len(rows)))),
            "k": cells[_BQ_CRITERION],
            "row": rows,
        }
        for name, (column, kind) in self.sums.items():
            values, empty, bad = (_bq_numbers if kind == "number" else _bq_integers)(cells[name])
            frame[column], frame[column + "~unread"] = values, (empty | bad).astype("int64")
            if bad.any():
                self.errors.append(
                    pd.DataFrame(
                        {
                            "d": frame["d"][bad],
                            "g": frame["g"][bad],
                            "k": frame["k"][bad],
                            "row": rows[bad],
                            "message": f"{column}: {name}="
                            + cells[name][bad].str.slice(0, 40).map(repr)
                            + " on row "
                            + pd.Series(rows[bad], index=cells[name][bad].index).astype(str),
                        }
                    )
                )
        for name, column in self.text.items():
            frame[column] = cells[name].where(cells[name] != "", None)
        self.partials.append(self._sum(pd.DataFrame(frame)))
        held = sum(len(partial) for partial in self.partials)
        # Summed again once they hold twice the keyword-days of the last sum: each row is summed a few times at most.
        if len(self.partials) >= _REDUCE_EVERY and held > 2 * self.summed:
            self.partials = [self._sum(pd.concat(self.partials, ignore_index=True))]
            self.summed = len(self.partials[0])

    def _sum(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A row per keyword-day: counts summed (and how many rows could not be read), its first row, and the text
        of its first row that has any."""
        how = {"row": "min"}
        for column, _ in self.sums.values():
            how[column] = how[column + "~unread"] = "sum"
        how |= {column: "first" for column in self.text.values()}
        return frame.groupby(_KEYS, sort=False, dropna=False).agg(how).reset_index()

    def finish(self, attributes: _KeywordAttributes | None) -> pd.DataFrame:
        """The keyword-days as raw report rows, the keyword attributes (if any) joined on."""
        sums = self._sum(pd.concat(self.partials, ignore_index=True)) if self.partials else None
        self.partials = []
        if sums is None or not len(sums):
            return empty_raw()
        sums = sums.sort_values("row", kind="stable").reset_index(drop=True)
        codes, distinct = pd.factorize(sums["d"])
        first_rows = sums.groupby(codes)["row"].min().to_numpy()
        try:
            days = _parse_dates(self.path, pd.Series(distinct, dtype=str), first_rows, self.date_format).to_numpy()
        except LandingFileError as error:  # named as the file names it
            raise LandingFileError(str(error).replace("column date", f"column {_BQ_DATE}")) from error
        problems = pd.Series("", index=sums.index, dtype=object)
        if self.errors:
            found = pd.concat(self.errors, ignore_index=True).sort_values("row", kind="stable")
            listed = found.groupby(_KEYS, sort=False)["message"].agg(_listed).rename("listed")
            problems = sums.join(listed, on=_KEYS)["listed"].fillna("").astype(object)
        keyword_id, bad_id = _parse_numbers(sums["k"], integral=True)
        if bad_id.any():
            problems[bad_id] = (
                "keyword_id: ad_group_criterion_criterion_id=" + sums["k"][bad_id].map(repr) + "; " + problems[bad_id]
            )
        out = {
            "date": pd.Series(days[codes]),
            "keyword_id": keyword_id.reset_index(drop=True),
            "ad_group_id": sums["g"].where(sums["g"] != "", None),
        }
        for column, kind in self.sums.values():
            unread = sums[column + "~unread"].to_numpy() > 0
            values = sums[column].to_numpy()
            if kind == "micros":
                # Summed as integers, divided once: the nearest float to the exact amount, like the text "12.345678".
                values = values.astype("float64") / _MICROS
            elif kind == "number" and column == "conversions":
                # Google attributes parts of a conversion; a sum of such parts lands a hair off the exact total.
                values = np.round(values, 6)
            out[column] = pd.Series(values, dtype="Float64").mask(unread)
        for column in self.text.values():
            out[column] = sums[column]
        frame = pd.DataFrame(out)
        if attributes is not None:
            frame = attributes.join(frame, sums["k"])
        for column in ("match_type", "status"):
            if column in frame:
                frame[column] = _google_enum(frame[column])
        errors = problems.astype(str).str.rstrip("; ")
        frame["source_file"] = self.path
        frame["source_row"] = sums["row"].to_numpy()
        frame["parse_errors"] = errors.where(errors != "", None).astype("string").to_numpy()
        raw = conform_raw(frame)
        return raw


def _listed(messages: pd.Series) -> str:
    shown = "; ".join(messages.iloc[:_ERRORS_SHOWN])
    more = len(messages) - _ERRORS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "") + "; "


@dataclass(frozen=True)
class _KeywordAttributes:
    """The keyword attributes tables beside a stats file: each keyword's latest text, match type and status, and its
    bid on each day a snapshot was taken."""

    latest: pd.DataFrame  # g, k and the text columns
    bids: pd.DataFrame  # g, k, date, max_cpc

    def join(self, frame: pd.DataFrame, criteria: pd.Series) -> pd.DataFrame:
        keys = pd.DataFrame({"g": frame["ad_group_id"].fillna("").astype(str).to_numpy(), "k": criteria.to_numpy()})
        latest = keys.merge(self.latest, on=["g", "k"], how="left")
        for column in self.latest.columns.difference(["g", "k"]):
            mine = frame[column] if column in frame else pd.Series(None, index=frame.index, dtype=object)
            frame[column] = mine.where(mine.notna(), latest[column].to_numpy())
        if len(self.bids):
            keys["date"] = frame["date"].to_numpy()
            bids = pd.Series(keys.merge(self.bids, on=["g", "k", "date"], how="left")["max_cpc"].to_numpy())
            # A day's bids are given only if every keyword of the day has one: validation quarantines a row without
            # one on a day others have it, which would lose its clicks for want of a bid.
            whole = bids.notna().groupby(keys["date"].to_numpy()).transform("all").to_numpy(dtype=bool)
            frame["max_cpc"] = bids.where(whole).to_numpy()
        return frame


class _BigQueryKeywords(_BigQueryTable):
    """A keyword attributes table (`ads_Keyword_<customer_id>`): a snapshot of every keyword on each `_DATA_DATE`.
    Only each keyword's latest snapshot and its daily bids are kept as it streams in."""

    wanted = (_BQ_CRITERION, _BQ_AD_GROUP, _BQ_DATA_DATE, *_BQ_TEXT, *_BQ_BIDS)

    def __init__(self, path: str, names: dict[str, int], date_format: str | None):
        super().__init__(path, names, date_format)
        self.text = {name: _BQ_TEXT[name] for name in _BQ_TEXT if name in self.columns and name != "campaign_id"}
        self.bid = next((name for name in _BQ_BIDS if name in self.columns), None)
        self.latest: list[pd.DataFrame] = []
        self.bids: list[pd.DataFrame] = []

    def add(self, cells: pd.DataFrame, rows: np.ndarray) -> None:
        cells = self.cells(cells)
        rows = np.asarray(rows, dtype="int64")
        frame = pd.DataFrame(
            {
                "g": cells[_BQ_AD_GROUP],
                "k": cells[_BQ_CRITERION],
                "snapshot": cells.get(_BQ_DATA_DATE, pd.Series("", index=range(len(rows)))),
                "row": rows,
            }
        )
        for name, column in self.text.items():
            frame[column] = cells[name].where(cells[name] != "", None)
        if self.bid is not None:
            micros, empty, bad = _bq_integers(cells[self.bid])
            if bad.any():
                first = int(np.argmax(bad))
                raise LandingFileError(
                    f"{self.path}: row {rows[first]}: column {self.bid}: {cells[self.bid].iloc[first]!r} is not a "
                    "whole number of micros"
                )
            frame["max_cpc"] = pd.Series(micros.astype("float64") / _MICROS).mask(empty)
            self.bids.append(frame.loc[frame["snapshot"] != "", ["g", "k", "snapshot", "row", "max_cpc"]])
        self.latest.append(self._latest(frame.drop(columns=["max_cpc"], errors="ignore")))
        if len(self.latest) >= _REDUCE_EVERY:
            self.latest = [self._latest(pd.concat(self.latest, ignore_index=True))]

    @staticmethod
    def _latest(frame: pd.DataFrame) -> pd.DataFrame:
        """Each keyword's row of its latest snapshot (ISO dates sort as text); of one snapshot, the last row."""
        ordered = frame.sort_values(["snapshot", "row"], kind="stable")
        return ordered.drop_duplicates(["g", "k"], keep="last")

    def finish(self) -> _KeywordAttributes:
        latest = self._latest(pd.concat(self.latest, ignore_index=True)) if self.latest else None
        columns = ["g", "k", "snapshot", *self.text.values()]
        if latest is None:
            latest = pd.DataFrame(columns=columns)
        latest = latest.reindex(columns=columns).reset_index(drop=True)
        latest["snapshot"] = self._days(latest["snapshot"], np.zeros(len(latest), dtype="int64"))
        bids = pd.concat(self.bids, ignore_index=True) if self.bids else pd.DataFrame(columns=["snapshot", "row"])
        bids = bids.assign(date=self._days(bids["snapshot"], bids["row"].to_numpy()))
        bids = bids.sort_values(["date", "row"], kind="stable").drop_duplicates(["g", "k", "date"], keep="last")
        return _KeywordAttributes(latest, bids.reindex(columns=["g", "k", "date", "max_cpc"]).reset_index(drop=True))

    def _days(self, snapshots: pd.Series, rows: np.ndarray) -> np.ndarray:
        """`_DATA_DATE` as days; NaT where the table has none."""
        out = np.full(len(snapshots), np.datetime64("NaT"), dtype="datetime64[ns]")
        given = (snapshots.fillna("") != "").to_numpy()
        if given.any():
            codes, distinct = pd.factorize(snapshots[given])
            first_rows = pd.Series(rows[given]).groupby(codes).min().to_numpy()
            days = _parse_dates(self.path, pd.Series(distinct, dtype=str), first_rows, self.date_format).to_numpy()
            out[given] = days[codes]
        return out


# (filesystem, path, size, mtime, date format) → the keyword attributes table there, or None for any other file.
_ATTRIBUTES_CACHE: dict[tuple, _KeywordAttributes | None] = {}
_ATTRIBUTES_CACHED = 8  # attributes tables held; other files' None costs little
_CACHE_ENTRIES = 100_000


def _keyword_attributes(
    fs: pafs.FileSystem, path: str, date_format: str | None, limits: ReadLimits, chunk_bytes: int
) -> _KeywordAttributes | None:
    """The keyword attributes tables in the folder of the stats file `path` (files of the landing zone's formats,
    not hidden, not links), as one: of a keyword's snapshots in several files the latest wins, and of one day's, the
    newer file's. None when there is none. Each file is read once while it is unchanged; one that cannot be read is
    left out here, and named as unreadable by its own read."""
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    try:
        infos = fs.get_file_info(pafs.FileSelector(parent, recursive=False))
    except OSError as error:
        raise LandingFileError(f"{path}: its folder cannot be listed for keyword attributes ({error})") from error
    found = []
    for info in sorted(infos, key=lambda i: (i.mtime_ns or 0, i.path)):
        if (
            info.type != pafs.FileType.File
            or info.base_name.startswith((".", "_"))
            or info.path == path
            or not info.path.lower().endswith((".csv", ".csv.gz", ".parquet"))
            or _refusal(fs, parent, info.path)
        ):
            continue
        key = (type(fs).__name__, info.path, info.size, info.mtime_ns, date_format)
        if key not in _ATTRIBUTES_CACHE:
            try:
                table, _ = _read_file(fs, info.path, {}, date_format, limits, chunk_bytes, keywords_only=True)
            except LandingFileError:
                # Not read as a keyword attributes table: its own read names what is wrong with it (the stats file's
                # index entry, kept while the stats file is unchanged, must not depend on another file).
                table = None
            if len(_ATTRIBUTES_CACHE) > _CACHE_ENTRIES:
                _ATTRIBUTES_CACHE.clear()
            if table is not None and sum(v is not None for v in _ATTRIBUTES_CACHE.values()) >= _ATTRIBUTES_CACHED:
                _ATTRIBUTES_CACHE.pop(next(k for k, v in _ATTRIBUTES_CACHE.items() if v is not None))
            _ATTRIBUTES_CACHE[key] = table.finish() if table is not None else None
        if _ATTRIBUTES_CACHE[key] is not None:
            found.append(_ATTRIBUTES_CACHE[key])
    if not found:
        return None
    # Newest snapshot first over all files; of one snapshot, the newer file's row (the files are oldest first).
    latest = pd.concat([f.latest.assign(file=n) for n, f in enumerate(found)], ignore_index=True)
    latest = latest.sort_values(["snapshot", "file"], kind="stable", na_position="first")
    latest = latest.drop_duplicates(["g", "k"], keep="last").drop(columns=["snapshot", "file"])
    bids = pd.concat([f.bids for f in found], ignore_index=True).drop_duplicates(["g", "k", "date"], keep="last")
    return _KeywordAttributes(latest.reset_index(drop=True), bids.dropna(subset=["date"]).reset_index(drop=True))


# A row per (file, day covered). `error` names a file that cannot be read (its days unknown: it covers no day);
# `completeness` what its own totals say is wrong with it (empty when nothing is).
INDEX_COLUMNS = ("path", "size", "mtime_ns", "date", "rows", "error", "completeness")


def refresh_index(
    fs: pafs.FileSystem, root: str, previous: pd.DataFrame | None, read, settle_seconds: float = 0.0
) -> tuple[pd.DataFrame, list[LandingFile]]:
    """(index, files new or changed since `previous`). The index has a row per (file, day covered) with the row
    count; an empty or unreadable file has one row with no date. Unchanged files (same size and mtime) are not read
    again. A file modified within `settle_seconds` is left out until it settles: it may still be being written."""
    settled_before = time.time_ns() - int(settle_seconds * 1e9)
    files = [f for f in list_landing_files(fs, root) if f.mtime_ns <= settled_before]
    known = set()
    if previous is not None and len(previous) and set(INDEX_COLUMNS) <= set(previous.columns):
        known = set(zip(previous["path"], previous["size"], previous["mtime_ns"]))
    parts, changed = [], []
    for file in files:
        if (file.path, file.size, file.mtime_ns) in known:
            parts.append(previous[(previous["path"] == file.path)])
            continue
        changed.append(file)
        error, completeness = file.refused, ""
        counts = pd.Series(dtype="int64")
        if not error:
            try:
                rows = read(file.path)
            except LandingFileError as failure:  # one bad file must not stop the days other files cover
                error = str(failure)
            else:
                counts = rows.groupby("date").size() if len(rows) else counts
                completeness = rows.attrs.get("completeness", "")
        days = counts.index if len(counts) else pd.DatetimeIndex([pd.NaT])
        parts.append(
            pd.DataFrame(
                {
                    "path": file.path,
                    "size": file.size,
                    "mtime_ns": file.mtime_ns,
                    "date": as_day(days).to_numpy(),
                    "rows": counts.to_numpy() if len(counts) else [0],
                    "error": error,
                    "completeness": completeness,
                }
            )
        )
    if not parts:
        empty = pd.DataFrame({c: [] for c in INDEX_COLUMNS}).astype(
            {"date": "datetime64[ns]", "error": "object", "completeness": "object"}
        )
        return empty, changed
    return pd.concat(parts, ignore_index=True).loc[:, list(INDEX_COLUMNS)], changed


def unsettled_files(fs: pafs.FileSystem, root: str, settle_seconds: float) -> list[str]:
    """Report files modified within `settle_seconds`: not read yet (see `refresh_index`)."""
    settled_before = time.time_ns() - int(settle_seconds * 1e9)
    return [f.path for f in list_landing_files(fs, root) if f.mtime_ns > settled_before]


def unreadable_files(index: pd.DataFrame) -> dict[str, str]:
    """Path → error of each landing file that could not be read (or was refused)."""
    bad = index[index["error"].fillna("") != ""].drop_duplicates("path")
    return dict(zip(bad["path"], bad["error"]))


def covered_days(index: pd.DataFrame) -> list[dt.date]:
    """The days the readable landing files have rows for, oldest first."""
    readable = index[(index["error"].fillna("") == "") & index["date"].notna()]
    return sorted({day.date() for day in pd.to_datetime(readable["date"])})


def files_covering(index: pd.DataFrame, days) -> list[str]:
    """Paths of the readable files with rows on any of `days`, in the index's (oldest-first) order."""
    wanted = index[index["date"].isin([pd.Timestamp(d) for d in days]) & (index["error"].fillna("") == "")]
    return list(dict.fromkeys(wanted["path"]))
