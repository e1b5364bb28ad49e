"""Keyword reports dropped into a landing zone (a folder or an S3 prefix) as CSV, CSV.gz or Parquet.

A file may hold one day or many; rows are split by date. Headers are matched to the contract's columns by name or
alias (case and spacing ignored), so both Google Ads UI exports ("Day", "Keyword ID", "Impr.", "Conv. value", with a
report-title preamble above the header, thousands separators and currency symbols) and plain snake_case files load.
Files are only ever read: never modified, moved or deleted.

Errors name the file, and the row and column where there is one. A row whose number cannot be read is kept, with the
problem in `parse_errors`, and validation quarantines it; a date that cannot be read, or dates in more than one format
within a file, fail the read, since the row cannot be placed in a partition without a guess.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from daily_bids.schema import (
    COLUMNS_BY_NAME, REPORT_COLUMNS, REQUIRED_COLUMNS, as_day, conform_raw, contract_table_markdown, empty_raw,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
HEADER_SEARCH_LINES = 30  # a preamble longer than this is not a report export
# Formats tried for the date column, one per file. Google Ads exports use ISO dates; spreadsheets use the others.
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%b %d, %Y", "%B %d, %Y",
                "%a, %b %d, %Y", "%Y%m%d")
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


def normalize_header(header: str) -> str:
    return re.sub(r"\s+", " ", str(header).replace("\ufeff", "")).strip().lower()


def header_map(extra_aliases: dict[str, str] | None = None) -> dict[str, str]:
    """Normalized header → contract column: each column's name and aliases, plus any configured ones."""
    mapping = {normalize_header(c.name): c.name for c in REPORT_COLUMNS}
    mapping |= {normalize_header(alias): c.name for c in REPORT_COLUMNS for alias in c.aliases}
    for header, column in (extra_aliases or {}).items():
        if column not in COLUMNS_BY_NAME:
            raise ValueError(f"column mapping {header!r} → {column!r}: {column!r} is not a report column; "
                             f"known: {list(COLUMNS_BY_NAME)}")
        mapping[normalize_header(header)] = column
    return mapping


def list_landing_files(fs: pafs.FileSystem, root: str) -> list[LandingFile]:
    """Report files under `root`, oldest first (later files restate earlier ones); hidden files are skipped."""
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = [
        LandingFile(info.path, info.size, info.mtime_ns or 0)
        for info in infos
        if info.type == pafs.FileType.File and info.base_name.lower().endswith(SUFFIXES)
        and not info.base_name.startswith((".", "_"))
    ]
    return sorted(files, key=lambda f: (f.mtime_ns, f.path))


def read_landing_file(fs: pafs.FileSystem, path: str, extra_aliases: dict[str, str] | None = None,
                      date_format: str | None = None) -> pd.DataFrame:
    """One landing file as raw report rows (contract columns plus source_file, source_row and parse_errors)."""
    try:
        # compression=None: the bytes as stored; gzip is undone below, where its errors can name the file.
        with fs.open_input_stream(path, compression=None) as source:
            data = source.read()
    except OSError as error:
        raise LandingFileError(f"{path}: cannot be read ({error})") from error
    if path.lower().endswith(".parquet"):
        cells, first_lines = _parquet_cells(path, data), None
    else:
        cells, first_lines = _csv_cells(path, data, extra_aliases)
    if cells is None:
        return empty_raw()
    return _to_raw(path, cells, first_lines, extra_aliases, date_format)


def _csv_cells(path: str, data: bytes, extra_aliases) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """All cells as strings, from the header row down, and the file line on which each row starts."""
    if path.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise LandingFileError(f"{path}: not a readable gzip file ({error})") from error
    if not data.strip():
        return None, None  # an empty file covers no day; the day's volume check reports the gap
    text = _decode(path, data)
    # Lines end only at CR, LF or CRLF: str.splitlines() would also break at U+2028, U+0085 and other separators
    # that are valid inside a CSV field.
    line_starts = [0] + [match.end() for match in _LINE_END.finditer(text)]
    lines = _LINE_END.split(text)
    known = header_map(extra_aliases)
    header_index, best = None, (0, None, [])
    for index, line in enumerate(lines[:HEADER_SEARCH_LINES]):
        fields = next(csv.reader([line], delimiter=_delimiter(line)), [])
        mapped = {known[normalize_header(f)] for f in fields if normalize_header(f) in known}
        if set(REQUIRED_COLUMNS) <= mapped:
            header_index = index
            break
        if len(mapped) > best[0]:
            best = (len(mapped), index, fields)
    if header_index is None:
        if best[0] >= 2:  # a header row, short of required columns
            missing = sorted(set(REQUIRED_COLUMNS) - {known[normalize_header(f)] for f in best[2]
                                                      if normalize_header(f) in known})
            raise LandingFileError(
                f"{path}: line {best[1] + 1} looks like the header but lacks required column(s) {missing}; "
                f"found {best[2]}. Expected schema:\n{contract_table_markdown()}"
            )
        raise LandingFileError(
            f"{path}: no header row with the required columns {list(REQUIRED_COLUMNS)} in the first "
            f"{HEADER_SEARCH_LINES} lines; is it a keyword report? Expected schema:\n{contract_table_markdown()}"
        )
    body = text[line_starts[header_index]:]  # the text as written: line breaks inside quoted fields are kept
    return _records(path, body, _delimiter(lines[header_index]), first_line=header_index + 1)


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
                    raise LandingFileError(f"{path}: line {first_line + line}: {len(record)} fields where the header "
                                           f"on line {first_line} has {len(header)}")
                records.append(record + [""] * (len(header) - len(record)))
                starts.append(first_line + line)
            line = reader.line_num
    except csv.Error as error:
        raise LandingFileError(f"{path}: not a well-formed CSV below the header on line {first_line} ({error})") from error
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


def _delimiter(line: str) -> str:
    return "\t" if line.count("\t") > line.count(",") else ","


def _parquet_cells(path: str, data: bytes) -> pd.DataFrame:
    try:
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise LandingFileError(f"{path}: not a readable Parquet file ({type(error).__name__}: {error})") from error
    return frame


def _to_raw(path: str, cells: pd.DataFrame, first_lines: np.ndarray | None, extra_aliases,
            date_format) -> pd.DataFrame:
    known = header_map(extra_aliases)
    columns: dict[str, str] = {}
    for header in cells.columns:
        column = known.get(normalize_header(header))
        if column is not None and column not in columns.values():
            columns[header] = column
    missing = [c for c in REQUIRED_COLUMNS if c not in columns.values()]
    if missing:
        raise LandingFileError(f"{path}: missing required column(s) {missing}; found {list(cells.columns)}. "
                               f"Expected schema:\n{contract_table_markdown()}")
    frame = cells.rename(columns=columns)[list(columns.values())]
    rows = np.arange(len(frame)) + 1 if first_lines is None else np.asarray(first_lines)
    first_cell = frame.iloc[:, 0].astype(str) if len(frame.columns) else pd.Series(dtype=str)
    summary = first_cell.str.match(_SUMMARY_ROW).to_numpy() | frame["date"].astype(str).str.match(_SUMMARY_ROW).to_numpy()
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
    cleaned = (text.str.replace(_CURRENCY_PREFIX, r"\1", regex=True).str.replace(_CURRENCY_SUFFIX, "", regex=True)
               .str.replace(" ", "", regex=False))
    well_formed = cleaned.str.match(_NUMBER).to_numpy(dtype=bool, na_value=False).copy()
    parsed = pd.to_numeric(cleaned.where(well_formed).str.replace(",", "", regex=False), errors="coerce")
    if integral:
        number = parsed.to_numpy(dtype="float64", na_value=np.nan)
        fractional = well_formed & (number != np.round(number))
        well_formed &= ~fractional
    bad = ~is_null & ~well_formed
    return pd.Series(np.where(well_formed, parsed, np.nan), index=values.index).astype("Float64"), bad


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
        raise LandingFileError(f"{path}: dates such as {text.iloc[0]!r} read as more than one format {complete}; "
                               f"set the landing date format (BIDS_LANDING_DATE_FORMAT) to say which")
    readable = {f: p.notna().to_numpy() for f, p in parsed.items() if p.notna().any()}
    unreadable = ~np.logical_or.reduce(list(readable.values())) if readable else np.ones(len(text), dtype=bool)
    if unreadable.any():
        first = int(np.argmax(unreadable))
        raise LandingFileError(f"{path}: row {rows[first]}: column date: {text.iloc[first]!r} is not a date in any "
                               f"known format {formats}")
    examples = []
    for f, ok in sorted(readable.items(), key=lambda item: -item[1].sum())[:2]:
        first = int(np.argmax(ok))
        examples.append(f"row {rows[first]} {text.iloc[first]!r} ({f})")
    raise LandingFileError(f"{path}: column date mixes formats, e.g. {' and '.join(examples)}; "
                           f"a file must use one date format")


INDEX_COLUMNS = ("path", "size", "mtime_ns", "date", "rows")


def refresh_index(fs: pafs.FileSystem, root: str, previous: pd.DataFrame | None, read) -> tuple[pd.DataFrame, list[LandingFile]]:
    """(index, files new or changed since `previous`). The index has a row per (file, day covered) with the row
    count; an empty file has one row with no date. Unchanged files (same size and mtime) are not read again."""
    files = list_landing_files(fs, root)
    known = set()
    if previous is not None and len(previous):
        known = set(zip(previous["path"], previous["size"], previous["mtime_ns"]))
    parts, changed = [], []
    for file in files:
        if (file.path, file.size, file.mtime_ns) in known:
            parts.append(previous[(previous["path"] == file.path)])
            continue
        changed.append(file)
        rows = read(file.path)
        counts = rows.groupby("date").size() if len(rows) else pd.Series(dtype="int64")
        days = counts.index if len(counts) else pd.DatetimeIndex([pd.NaT])
        parts.append(pd.DataFrame({"path": file.path, "size": file.size, "mtime_ns": file.mtime_ns,
                                   "date": as_day(days).to_numpy(), "rows": counts.to_numpy() if len(counts) else [0]}))
    if not parts:
        return pd.DataFrame({c: [] for c in INDEX_COLUMNS}).astype({"date": "datetime64[ns]"}), changed
    return pd.concat(parts, ignore_index=True).loc[:, list(INDEX_COLUMNS)], changed


def files_covering(index: pd.DataFrame, days) -> list[str]:
    """Paths of the files with rows on any of `days`, in the index's (oldest-first) order."""
    wanted = index[index["date"].isin([pd.Timestamp(d) for d in days])]
    return list(dict.fromkeys(wanted["path"]))
