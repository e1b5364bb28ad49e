"""Keyword reports dropped into a landing zone (a folder or an S3 prefix) as CSV, CSV.gz, Parquet or Excel (.xlsx).

A file may hold one day or many; rows are split by date. Headers are matched to the contract's columns by name or
alias (case and spacing ignored), so both Google Ads UI exports ("Day", "Keyword ID", "Impr.", "Conv. value", with a
report-title preamble above the header, thousands separators and currency symbols) and plain snake_case files load.
Files are only ever read: never modified, moved or deleted. A file of any other format is listed as refused, never
skipped silently.

Errors name the file, and the row and column where there is one. A row whose number cannot be read is kept, with the
problem in `parse_errors`, and validation quarantines it; a date that cannot be read, or dates in more than one format
within a file, fail the read, since the row cannot be placed in a partition without a guess.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.schema import (
    COLUMNS_BY_NAME,
    REPORT_COLUMNS,
    REQUIRED_COLUMNS,
    as_day,
    conform_raw,
    contract_table_markdown,
    empty_raw,
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
_LINE_END = re.compile(r"\r\n|\n|\r")


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


def read_landing_file(
    fs: pafs.FileSystem,
    path: str,
    extra_aliases: dict[str, str] | None = None,
    date_format: str | None = None,
    limits: ReadLimits = ReadLimits(),
) -> pd.DataFrame:
    """One landing file as raw report rows (contract columns plus source_file, source_row and parse_errors).

    `frame.attrs["completeness"]` says what the file's own totals say about it: empty when they match the rows (or
    the file has none to compare), else the problem, e.g. a Google Ads export cut short before its Total line."""
    data = _read_bytes(fs, path, limits)
    if path.lower().endswith(".parquet"):
        cells, first_lines, totals = _parquet_cells(path, data, limits), None, False
    elif path.lower().endswith(".xlsx"):
        cells, first_lines, totals = _xlsx_cells(path, data, extra_aliases, limits)
    else:
        cells, first_lines, totals = _csv_cells(path, data, extra_aliases)
    if cells is None:
        return empty_raw()
    raw = _to_raw(path, cells, first_lines, extra_aliases, date_format)
    raw.attrs["completeness"] = _completeness(raw, totals)
    return raw


def _read_bytes(fs: pafs.FileSystem, path: str, limits: ReadLimits) -> bytes:
    """The file's bytes, gzip undone, counting as they arrive so that an oversized file is refused early."""
    chunks, size = [], 0
    try:
        # compression=None: the bytes as stored; gzip is undone below, where its errors can name the file.
        with fs.open_input_stream(path, compression=None) as source:
            while chunk := source.read(MB):
                size += len(chunk)
                if size > limits.max_file_bytes:
                    raise LandingFileError(
                        f"{path}: larger than {limits.max_file_bytes // MB:,} MB (BIDS_LANDING_MAX_FILE_MB); not read"
                    )
                chunks.append(chunk)
    except OSError as error:
        raise LandingFileError(f"{path}: cannot be read ({error})") from error
    data = b"".join(chunks)
    return _gunzip(path, data, limits.max_uncompressed_bytes) if path.lower().endswith(".gz") else data


def _gunzip(path: str, data: bytes, limit: int) -> bytes:
    """Decompress piece by piece (members one after another), stopping as soon as the output passes `limit`."""
    out, size, rest = [], 0, data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            pending = rest
            while not inflater.eof:
                # At most 1 MB out per call; zlib may still hold output after the input is used up, so an empty
                # `pending` is fed again until nothing more comes.
                piece = inflater.decompress(pending, MB)
                if not piece and not pending:
                    raise LandingFileError(f"{path}: not a readable gzip file (it ends before its data does)")
                size += len(piece)
                if size > limit:
                    raise LandingFileError(
                        f"{path}: decompresses to more than {limit // MB:,} MB "
                        "(BIDS_LANDING_MAX_UNCOMPRESSED_MB); not read"
                    )
                out.append(piece)
                pending = inflater.unconsumed_tail
            rest = inflater.unused_data.lstrip(b"\x00")
    except zlib.error as error:
        raise LandingFileError(f"{path}: not a readable gzip file ({error})") from error
    return b"".join(out)


def _csv_cells(
    path: str, data: bytes, extra_aliases
) -> tuple[pd.DataFrame | None, np.ndarray | None, list[StatedTotal] | None | bool]:
    """All cells as strings, from the header row down; the file line on which each row starts; and the totals the
    file states about itself (see `_completeness`)."""
    if not data.strip():
        return None, None, False  # an empty file covers no day; the day's volume check reports the gap
    text = _decode(path, data)
    # Lines end only at CR, LF or CRLF: str.splitlines() would also break at U+2028, U+0085 and other separators
    # that are valid inside a CSV field.
    line_starts = [0] + [match.end() for match in _LINE_END.finditer(text)]
    lines = _LINE_END.split(text)
    known = header_map(extra_aliases)
    candidates = [next(csv.reader([line], delimiter=_delimiter(line)), []) for line in lines[:HEADER_SEARCH_LINES]]
    header_index = _header_index(path, candidates, known, "line")
    body = text[line_starts[header_index] :]  # the text as written: line breaks inside quoted fields are kept
    cells, starts = _records(path, body, _delimiter(lines[header_index]), first_line=header_index + 1)
    # Google Ads UI exports have a title above the header and end with "Total: …" lines; plain files have neither.
    totals = _stated_totals(cells, known) if header_index > 0 else False
    return cells, starts, totals


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
    path: str, data: bytes, extra_aliases, limits: ReadLimits
) -> tuple[pd.DataFrame | None, np.ndarray | None, list[StatedTotal] | None | bool]:
    """An Excel download (the first sheet) as `_csv_cells` gives a CSV: string cells from the header down, the sheet
    row of each record, and the totals the export states. Read in openpyxl's read-only mode, row by row."""
    # Imported here: only a landing zone with Excel files needs it.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # The sizes the archive declares; zipfile stops at them (and fails the CRC) if a member inflates further.
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > limits.max_uncompressed_bytes:
            raise LandingFileError(
                f"{path}: decompresses to more than {limits.max_uncompressed_bytes // MB:,} MB "
                "(BIDS_LANDING_MAX_UNCOMPRESSED_MB); not read"
            )
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
    known = header_map(extra_aliases)
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


def _records(path: str, body: str, delimiter: str, first_line: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The header and the non-blank records of `body` as string cells, and the file line each record starts on
    (`first_line` is the header's). Python's csv module reads quoted fields that span lines, CR included."""
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        records, starts, line = [], [], reader.line_num
        for record in reader:
            if any(field.strip() for field in record):  # blank lines are skipped, but still counted
                if len(record) > len(header):
                    raise LandingFileError(
                        f"{path}: line {first_line + line}: {len(record)} fields where the header "
                        f"on line {first_line} has {len(header)}"
                    )
                records.append(record + [""] * (len(header) - len(record)))
                starts.append(first_line + line)
            line = reader.line_num
    except csv.Error as error:
        raise LandingFileError(
            f"{path}: not a well-formed CSV below the header on line {first_line} ({error})"
        ) from error
    return pd.DataFrame(records, columns=header, dtype=str), np.asarray(starts, dtype="int64")


def _decode(path: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Google Ads "CSV (Excel)" exports are UTF-16
        return data.decode("utf-16")
    if b"\x00" in data[:4096]:
        raise LandingFileError(f"{path}: binary content where a CSV report was expected")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LandingFileError(f"{path}: not UTF-8 or UTF-16 text (byte {error.start}: {error.reason})") from error


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


def _parquet_cells(path: str, data: bytes, limits: ReadLimits) -> pd.DataFrame:
    try:
        metadata = pq.ParquetFile(io.BytesIO(data)).metadata
        unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        if unpacked > limits.max_uncompressed_bytes:
            raise LandingFileError(
                f"{path}: decompresses to more than {limits.max_uncompressed_bytes // MB:,} MB "
                "(BIDS_LANDING_MAX_UNCOMPRESSED_MB); not read"
            )
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise LandingFileError(f"{path}: not a readable Parquet file ({type(error).__name__}: {error})") from error
    return frame


def _to_raw(path: str, cells: pd.DataFrame, first_lines: np.ndarray | None, extra_aliases, date_format) -> pd.DataFrame:
    known = header_map(extra_aliases)
    columns: dict[str, str] = {}
    for header in cells.columns:
        column = known.get(normalize_header(header))
        if column is not None and column not in columns.values():
            columns[header] = column
    missing = [c for c in REQUIRED_COLUMNS if c not in columns.values()]
    if missing:
        raise LandingFileError(
            f"{path}: missing required column(s) {missing}; found {list(cells.columns)}. "
            f"Expected schema:\n{contract_table_markdown()}"
        )
    frame = cells.rename(columns=columns)[list(columns.values())]
    rows = np.arange(len(frame)) + 1 if first_lines is None else np.asarray(first_lines)
    first_cell = frame.iloc[:, 0].astype(str) if len(frame.columns) else pd.Series(dtype=str)
    summary = (
        first_cell.str.match(_SUMMARY_ROW).to_numpy() | frame["date"].astype(str).str.match(_SUMMARY_ROW).to_numpy()
    )
    frame, rows = frame.loc[~summary].reset_index(drop=True), rows[~summary]

    out = pd.DataFrame({"date": _parse_dates(path, frame["date"], rows, date_format)})
    problems = pd.Series("", index=frame.index, dtype=object)
    for column in REPORT_COLUMNS:
        if column.name == "date":
            continue
        if column.name not in frame.columns:
            out[column.name] = pd.NA
            continue
        values = frame[column.name]
        if column.kind == "text":
            # Kept exactly as reported ("none", "NA", "-" and surrounding spaces included); only an empty field is
            # missing text. Google's "--" placeholder stands for an empty cell, not for a keyword.
            text = values.astype("string")
            out[column.name] = text.mask(text.isin(["", "--"]))
        else:
            if column.kind == "share":
                parsed, bad = _parse_share(values)
            else:
                parsed, bad = _parse_numbers(values, integral=column.kind in ("id", "count"))
            out[column.name] = parsed
            problems[bad] += column.name + "=" + values[bad].astype(str).str.slice(0, 40).map(repr) + "; "
    out["source_file"] = path
    out["source_row"] = rows
    problems = problems.str.rstrip("; ").replace("", None)
    out["parse_errors"] = problems
    return conform_raw(out)


def _parse_numbers(values: pd.Series, integral: bool) -> tuple[pd.Series, np.ndarray]:
    """Numbers from strings like `1,234`, `$1,234.56`, `€ 12.50`, `EUR 3.10`, `12%`; nulls for `--` and blanks."""
    if pd.api.types.is_numeric_dtype(values):  # Parquet: already typed
        parsed = pd.to_numeric(values, errors="coerce").astype("Float64")
        return parsed, np.zeros(len(values), dtype=bool)
    text = values.astype(str).str.strip()
    is_null = text.str.lower().isin(_NULL_TOKENS).to_numpy(dtype=bool)
    # Only currency symbols or codes and a percent sign are stripped; "1O" (a letter O) must stay an error.
    cleaned = (
        text.str.replace(_CURRENCY_PREFIX, r"\1", regex=True)
        .str.replace(_CURRENCY_SUFFIX, "", regex=True)
        .str.replace(" ", "", regex=False)
    )
    well_formed = cleaned.str.match(_NUMBER).to_numpy(dtype=bool, na_value=False).copy()
    parsed = pd.to_numeric(cleaned.where(well_formed).str.replace(",", "", regex=False), errors="coerce")
    if integral:
        number = parsed.to_numpy(dtype="float64", na_value=np.nan)
        fractional = well_formed & (number != np.round(number))
        well_formed &= ~fractional
    bad = ~is_null & ~well_formed
    return pd.Series(np.where(well_formed, parsed, np.nan), index=values.index).astype("Float64"), bad


def _parse_share(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Shares as fractions: `45.2%` is 0.452 and a bare `0.452` stays; Google's `< 10%` and `> 90%` (its bounds for
    shares it does not state) read as the bound."""
    if pd.api.types.is_numeric_dtype(values):
        return _parse_numbers(values, integral=False)
    text = values.astype(str).str.strip()
    percent = text.str.endswith("%").to_numpy()
    parsed, bad = _parse_numbers(text.str.replace(r"^[<>]\s*", "", regex=True), integral=False)
    return parsed.mask(percent, parsed / 100.0), bad


def _parse_dates(path: str, values: pd.Series, rows: np.ndarray, date_format: str | None) -> pd.Series:
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
    for f, ok in sorted(readable.items(), key=lambda item: -item[1].sum())[:2]:
        first = int(np.argmax(ok))
        examples.append(f"row {rows[first]} {text.iloc[first]!r} ({f})")
    raise LandingFileError(
        f"{path}: column date mixes formats, e.g. {' and '.join(examples)}; a file must use one date format"
    )


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
