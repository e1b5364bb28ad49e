"""The Ads Editor file: the day's bids in the layout Google Ads Editor imports, safe to open in a spreadsheet.

The file is built column by column with Arrow's compute kernels, not a Python call per cell: a 10M-keyword sheet is
the publication step's bulk. Each row is joined into its CSV line by Arrow (every field quoted, a quote inside a field
doubled, CRLF line ends), which is what Python's `csv` module writes with QUOTE_ALL. Arrow's own CSV writer is not
used: pyarrow's `WriteOptions` cannot set the line end (it always writes LF), and the file has always had CRLF.

A column that is not what the bids table holds (text that is not a string column, a Keyword ID that is not digits,
a bid too large or not finite to format exactly here) falls back to the per-cell Python rules below for the cells
concerned, so the bytes are the same for any input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from daily_bids import currency as currencies
from daily_bids.schema import NOT_REPORTED

# Google Ads Editor's columns for a keyword bid change, and the bid table's column each one is taken from. The IDs
# are what match the change to the keyword (a report without names is still applied by them): Google's criterion ID
# with its ad group ID, since one criterion ID names a keyword in each ad group holding it. The names are there for
# people reading the file, and empty where the report had none.
ADS_EDITOR_COLUMNS: dict[str, str] = {
    "Keyword ID": "criterion_id",
    "Campaign ID": "campaign_id",
    "Campaign": "campaign",
    "Ad group ID": "ad_group_id",
    "Ad group": "ad_group",
    "Keyword": "keyword",
    "Match type": "match_type",
    "Max CPC": "bid",
}
# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV-injection list, tab and CR included,
# since spreadsheets strip them and then read what follows).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

LINE_END = "\r\n"
HEADER = (",".join(f'"{header}"' for header in ADS_EDITOR_COLUMNS) + LINE_END).encode("utf-8")
# Rows joined into lines at a time: bounds the kernels' intermediate columns, and keeps a 32-bit string offset safe.
ROWS_PER_SLICE = 1 << 18
# Criterion IDs cast to int64 by Arrow: at most 18 ASCII digits always fit (Python's `int` takes the rest).
ID_DIGITS = "^[0-9]{1,18}$"
CANONICAL_ID = "^(0|[1-9][0-9]{0,17})$"  # digits str(int(...)) gives back unchanged
# Amounts whose cents (or yen) are below this are formatted exactly by `money_text`; larger ones by Python.
EXACT_SCALED_LIMIT = 2.0**52
# Veltkamp's split of a double into two halves of at most 26 bits: their products with a small scale are exact.
SPLITTER = 134217729.0  # 2**27 + 1


def ads_editor_csv(
    bids: pd.DataFrame | pa.Table, with_header: bool = True, currency: str = currencies.DEFAULT_CURRENCY
) -> bytes:
    """The bids in the layout Google Ads Editor imports as keyword bid changes (without the header line, for the
    batches after the first). Max CPC is written with the account `currency`'s decimals: `1.20` in USD, `120` in JPY.

    Text is written as reported, every field quoted (so commas, quotes, line breaks and Unicode line separators stay
    inside their field), except that text a spreadsheet would run as a formula gets a leading apostrophe, the way
    spreadsheet tools mark a cell as text. A name the report did not carry is an empty field, never a marker.
    `bids` is a frame or an Arrow table of the bids table's columns."""
    return b"".join(bytes(piece) for piece in ads_editor_pieces(bids, with_header, currency))


def ads_editor_pieces(
    bids: pd.DataFrame | pa.Table, with_header: bool = True, currency: str = currencies.DEFAULT_CURRENCY
) -> list[bytes | pa.Buffer]:
    """`ads_editor_csv`'s bytes as the pieces Arrow built them in, to write out without joining them first."""
    source = _Columns(bids)
    missing = [column for column in ADS_EDITOR_COLUMNS.values() if column != "criterion_id" and column not in source]
    if missing:
        raise KeyError(f"the bids have no {', '.join(missing)} column (the Ads Editor file needs them)")
    money = currencies.currency(currency)
    pieces: list[bytes | pa.Buffer] = [HEADER] if with_header else []
    for start in range(0, source.rows, ROWS_PER_SLICE):
        pieces.append(_lines(source.slice(start, ROWS_PER_SLICE), money))
    return pieces


def neutralize_formula(value) -> str:
    """`value` as spreadsheet-safe text: empty for a null or the not-reported marker, `'` before a formula lead."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == NOT_REPORTED:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_LEADS) else text


class _Columns:
    """The bids' columns as Arrow arrays, with the values a frame of them holds, for the per-cell fallbacks."""

    def __init__(self, bids: pd.DataFrame | pa.Table | pa.RecordBatch, start: int = 0, length: int | None = None):
        self.bids, self.start = bids, start
        total = bids.num_rows if isinstance(bids, pa.Table | pa.RecordBatch) else len(bids)
        self.rows = total - start if length is None else max(0, min(length, total - start))

    def slice(self, start: int, length: int) -> _Columns:
        return _Columns(self.bids, self.start + start, length)

    def __contains__(self, column: str) -> bool:
        names = self.bids.column_names if isinstance(self.bids, pa.Table | pa.RecordBatch) else self.bids.columns
        return column in names

    def arrow(self, column: str) -> pa.Array | None:
        """The column as one Arrow array; None where a frame's column has no Arrow type (mixed Python objects)."""
        if isinstance(self.bids, pa.Table | pa.RecordBatch):
            values = self.bids.column(column).slice(self.start, self.rows)
        else:
            try:
                values = pa.array(self.bids[column].iloc[self.start : self.start + self.rows], from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                return None
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values

    def values(self, column: str) -> np.ndarray:
        """The column's values as the frame `Warehouse.iter_partition` hands over holds them (NaN for a null bid)."""
        if isinstance(self.bids, pa.Table | pa.RecordBatch):
            chunk = self.bids.column(column).slice(self.start, self.rows)
            return chunk.to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True).to_numpy()
        return self.bids[column].iloc[self.start : self.start + self.rows].to_numpy()


def _lines(source: _Columns, money: currencies.Currency) -> pa.Buffer:
    """The rows' CSV lines, joined by Arrow into one buffer."""
    fields: list[pa.Array] = []
    for header, column in ADS_EDITOR_COLUMNS.items():
        if header == "Keyword ID":
            fields.append(_keyword_ids(source))
        elif header == "Max CPC":
            fields.append(money_text(source.arrow(column), money, lambda: source.values(column)))
        else:  # every other column is report text (DIMENSION_COLUMNS)
            fields.append(_quoted(_text(source, column)))
    pieces: list[pa.Array | pa.Scalar] = [_text_scalar('"')]
    for number, field in enumerate(fields):
        pieces.append(field.cast(pa.large_string()))
        end = '"' + LINE_END if number == len(fields) - 1 else '","'
        pieces.append(_text_scalar(end))
    lines = pc.binary_join_element_wise(*pieces, _text_scalar(""))
    if len(lines) == 0:
        return pa.py_buffer(b"")
    _, offset_buffer, data = lines.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    return data[int(offsets[0]) : int(offsets[-1])]


def _text_scalar(text: str) -> pa.Scalar:
    """A constant for the kernels, of the one string type every column here is cast to."""
    return pa.scalar(text, pa.large_string())


def _text(source: _Columns, column: str) -> pa.Array:
    """A text column made spreadsheet-safe (`neutralize_formula`, by Arrow on a string column)."""
    values = source.arrow(column)
    if values is not None and pa.types.is_null(values.type):
        return pa.array([""] * len(values), pa.large_string())
    if values is not None and pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if values is None or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type)
    ):
        return pa.array([neutralize_formula(value) for value in source.values(column)], pa.large_string())
    values = values.cast(pa.large_string())
    # Each step only where some row needs it: a string column rebuilt costs more than the test.
    blank = pc.fill_null(pc.equal(values, NOT_REPORTED), True)
    text = pc.if_else(blank, _text_scalar(""), values) if pc.any(blank).as_py() else values
    formula = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=pa.array(FORMULA_LEADS, pa.large_string()))
    if pc.any(formula).as_py():
        text = pc.if_else(formula, pc.binary_join_element_wise(_text_scalar("'"), text, _text_scalar("")), text)
    return text


def _quoted(text: pa.Array) -> pa.Array:
    """The text as inside a quoted CSV field: a quote doubled."""
    return pc.replace_substring(text, '"', '""') if pc.any(pc.match_substring(text, '"')).as_py() else text


def _keyword_ids(source: _Columns) -> pa.Array:
    """Google's criterion ID as digits; where it is empty (bids made before the criterion ID was kept apart, which
    have only keyword_id, the criterion ID then), the keyword_id. `str(int(...))` of each, by Arrow where it can."""
    criteria = (
        _text(source, "criterion_id") if "criterion_id" in source else pa.array([""] * source.rows, pa.large_string())
    )
    from_keyword = pc.equal(criteria, "")
    keyword_ids = source.arrow("keyword_id") if "keyword_id" in source else None
    canonical = pc.all(pc.or_(pc.match_substring_regex(criteria, CANONICAL_ID), from_keyword)).as_py() is not False
    digits = (
        canonical or pc.all(pc.or_(pc.match_substring_regex(criteria, ID_DIGITS), from_keyword)).as_py() is not False
    )
    keyword_ids_usable = not pc.any(from_keyword).as_py() or (
        keyword_ids is not None
        and pa.types.is_integer(keyword_ids.type)
        and not pc.any(pc.and_(from_keyword, pc.is_null(keyword_ids))).as_py()
    )
    if not (digits and keyword_ids_usable):  # the rules cell by cell, as always (an ID that is no integer is refused)
        fallback = source.values("keyword_id") if keyword_ids is not None else [""] * source.rows
        return pa.array(
            [
                str(int(kept if criterion == "" else criterion))
                for criterion, kept in zip(criteria.to_pylist(), fallback)
            ],
            pa.large_string(),
        )
    if canonical:
        from_criteria = criteria  # already what str(int(...)) gives
    else:  # leading zeros
        from_criteria = pc.cast(
            pc.cast(pc.if_else(from_keyword, _text_scalar("0"), criteria), pa.int64()), pa.large_string()
        )
    if keyword_ids is None:
        return from_criteria
    return pc.if_else(from_keyword, pc.cast(keyword_ids, pa.large_string()), from_criteria)


def money_text(
    amounts: pa.Array | None, money: currencies.Currency, values: Callable[[], np.ndarray] | None = None
) -> pa.Array:
    """`money.format` of each amount, computed by numpy and Arrow: the same digits as Python's `f"{x:.2f}"`, which
    rounds the float's exact binary value half to even (1.005 is 1.00499999999999989…, so `1.00`).

    The amount times 10**decimals is rounded with its rounding error known exactly (Dekker's product), so a product
    that lands on a half only because of float rounding is rounded the way the exact value is. Amounts this cannot
    do exactly (not finite, huge, a null, a non-numeric column) are formatted by `money.format` itself, from `values`
    (the column as a frame holds it; by default the amounts, a null as NaN)."""
    if amounts is None or not (pa.types.is_floating(amounts.type) or pa.types.is_integer(amounts.type)):
        python = values() if values is not None else amounts.to_pylist()
        return pa.array([money.format(value) for value in python], pa.large_string())
    x = pc.fill_null(amounts.cast(pa.float64(), safe=False), float("nan")).to_numpy(zero_copy_only=False)
    decimals = money.decimals
    scale = float(10**decimals)
    with np.errstate(all="ignore"):
        scaled = x * scale
        split = SPLITTER * x
        high = split - (split - x)
        error = (high * scale - scaled) + (x - high) * scale  # x * scale - scaled, exactly
        units = np.rint(scaled)  # half to even, like Python, where the product is exactly a half
        off = scaled - units  # exact
        units += (off == 0.5) & (error > 0)
        units -= (off == -0.5) & (error < 0)
    exact = np.isfinite(scaled) & (np.abs(scaled) < EXACT_SCALED_LIMIT) & (decimals <= 6)
    whole = np.abs(np.where(exact, units, 0)).astype(np.int64)
    if decimals:
        divisor = 10**decimals
        integer = pc.cast(pa.array(whole // divisor), pa.large_string())
        fraction = pc.utf8_lpad(pc.cast(pa.array(whole % divisor), pa.large_string()), decimals, padding="0")
        text = pc.binary_join_element_wise(integer, fraction, _text_scalar("."))
    else:
        text = pc.cast(pa.array(whole), pa.large_string())
    text = pc.if_else(
        pa.array(np.signbit(x)), pc.binary_join_element_wise(_text_scalar("-"), text, _text_scalar("")), text
    )
    if not exact.all():
        rest = ~exact
        python = values()[rest] if values is not None else x[rest]
        text = pc.replace_with_mask(
            text, pa.array(rest), pa.array([money.format(value) for value in python], pa.large_string())
        )
    return text
