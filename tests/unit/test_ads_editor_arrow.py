"""The Ads Editor CSV built by Arrow is byte for byte what the documented rules give, written by Python's `csv`."""

import csv
import datetime as dt
import io
import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daily_bids import currency as currencies
from daily_bids.schema import NOT_REPORTED
from daily_bids.serving.ads_editor import ADS_EDITOR_COLUMNS, FORMULA_LEADS, ads_editor_csv, money_text
from daily_bids.serving.publishing import write_ads_editor_csv
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

TEXT_COLUMNS = ("campaign_id", "campaign", "ad_group_id", "ad_group", "keyword", "match_type")
HOSTILE_TEXT = [
    "shoes, red",
    'say "hi"',
    '"',
    '""',
    'ends with "',
    "line\r\nbreak",
    "lf\nonly",
    "cr\ronly",
    "trailing newline\n",
    "sep\u2028here",
    "para\u2029here",
    "nel\u0085here",
    "מגפיים אדומים",
    "boots 🥾",
    "ünïcödé",
    "",
    " ",
    "  padded  ",
    "none",
    "NA",
    "nan",
    NOT_REPORTED,
    NOT_REPORTED + " ",
    "(NOT REPORTED)",
    "'already quoted",
    "a=1",
    "x-y",
    '=HYPERLINK("http://evil","click")',
    *(lead + "1+1" for lead in FORMULA_LEADS),
    *FORMULA_LEADS,
    "\t=1+1",
    "\r\n=1",
    "nul\x00inside",
    None,
]


def reference_csv(bids: pd.DataFrame, with_header: bool = True, currency: str = "USD") -> bytes:
    """The documented rules, a cell at a time, written by Python's csv module (every field quoted, CRLF)."""

    def text(value) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if value == NOT_REPORTED:
            return ""
        return "'" + value if value.startswith(FORMULA_LEADS) else value

    quantum = Decimal(1).scaleb(-currencies.currency(currency).decimals)
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if with_header:
        writer.writerow(ADS_EDITOR_COLUMNS)
    for row in bids.to_dict("records"):
        criterion = text(row.get("criterion_id"))
        keyword_id = str(int(criterion if criterion else row["keyword_id"]))
        max_cpc = format(Decimal(float(row["bid"])).quantize(quantum, ROUND_HALF_EVEN), "f")
        writer.writerow([keyword_id, *(text(row[column]) for column in TEXT_COLUMNS), max_cpc])
    return out.getvalue().encode("utf-8")


def hostile_bids() -> pd.DataFrame:
    """Every hostile text in every text column (each column shifted, so the rows mix them), IDs above 2**53, a
    criterion ID empty, missing or not reported where keyword_id is the Keyword ID, bids on and around half-cents."""
    n = len(HOSTILE_TEXT)
    bids = [1.005, 0.1 + 0.2, 1.015, 2.675, 0.125, 0.375, 1.0, 0.0, 1234567.891, 0.005, 0.015, 99.995, 12.5, 0.5]
    criteria = ["", None, NOT_REPORTED, "123", "007", str(2**53 + 1), str(2**63 - 1), "9" * 18]
    frame = pd.DataFrame(
        {
            "keyword_id": np.array([2**53 + 1 + i if i % 2 else 2**62 + i for i in range(n)], dtype="int64"),
            "criterion_id": pd.array([criteria[i % len(criteria)] for i in range(n)], dtype="string"),
            **{
                column: pd.array([HOSTILE_TEXT[(i + shift) % n] for i in range(n)], dtype="string")
                for shift, column in enumerate(TEXT_COLUMNS)
            },
            "bid": [bids[i % len(bids)] for i in range(n)],
        }
    )
    return frame


@pytest.mark.parametrize("currency", ["USD", "JPY", "KRW", "EUR"])
def test_hostile_bids_come_out_byte_for_byte_as_the_rules_say(currency):
    bids = hostile_bids()
    expected = reference_csv(bids, currency=currency)
    assert ads_editor_csv(bids, currency=currency) == expected
    assert ads_editor_csv(pa.Table.from_pandas(bids, preserve_index=False), currency=currency) == expected
    assert ads_editor_csv(bids, with_header=False, currency=currency) == reference_csv(bids, False, currency)
    assert expected.count(b"\r\n") >= len(bids) + 1


def test_the_rows_read_back_as_the_text_went_in():
    bids = hostile_bids()
    rows = list(csv.DictReader(io.StringIO(ads_editor_csv(bids).decode("utf-8"), newline="")))
    assert [row["Keyword"] for row in rows] == [
        "" if value in (None, NOT_REPORTED) else ("'" + value if value.startswith(FORMULA_LEADS) else value)
        for value in bids["keyword"].astype(object).where(bids["keyword"].notna(), None)
    ]
    assert rows[0]["Keyword ID"] == str(2**62)  # criterion "" → keyword_id, exact above 2**53
    assert rows[5]["Keyword ID"] == str(2**53 + 1) and rows[4]["Keyword ID"] == "7"
    assert [row["Max CPC"] for row in rows[:4]] == ["1.00", "0.30", "1.01", "2.67"]  # the floats' exact values


def test_a_frame_without_criterion_id_and_object_columns_match_the_rules():
    bids = hostile_bids().drop(columns="criterion_id")
    for column in TEXT_COLUMNS:
        bids[column] = bids[column].astype(object).where(bids[column].notna(), None)
    assert ads_editor_csv(bids) == reference_csv(bids)


def test_ids_that_are_not_plain_digits_follow_pythons_int(monkeypatch):
    """Criterion IDs Arrow would not cast (spaces, other scripts' digits, 19+ digits) are Python's int() of them."""
    bids = hostile_bids().iloc[:5].copy()
    bids["criterion_id"] = pd.array([" 12 ", "١٢٣", "1_000", "0" * 30 + "5", str(2**70)], dtype="string")
    text = ads_editor_csv(bids).decode()
    assert [row["Keyword ID"] for row in csv.DictReader(io.StringIO(text, newline=""))] == [
        "12",
        "123",
        "1000",
        "5",
        str(2**70),
    ]
    bids["criterion_id"] = pd.array(["abc", "1", "2", "3", "4"], dtype="string")
    with pytest.raises(ValueError):
        ads_editor_csv(bids)
    bids["criterion_id"] = pd.array(["=1", "1", "2", "3", "4"], dtype="string")  # neutralized first: not an ID
    with pytest.raises(ValueError):
        ads_editor_csv(bids)


def test_an_empty_batch_is_the_header_alone_or_nothing():
    bids = hostile_bids().iloc[0:0]
    assert ads_editor_csv(bids) == reference_csv(bids)
    assert ads_editor_csv(bids, with_header=False) == b""


@pytest.mark.parametrize("decimals_unit", [1, 10, 100, 1000, 10_000, 1_000_000, 10_000_000])
def test_money_text_rounds_the_exact_float_half_to_even_for_any_decimals(decimals_unit):
    """Half-units and their neighbours, one float step either side, for 0 to 6 decimals (a 3-decimal currency
    such as TND included, though the table has none yet)."""
    money = currencies.Currency("XXX", decimals_unit)
    scale = 10**money.decimals
    rng = np.random.default_rng(7)
    halves = (rng.integers(0, 10**7, 2000) + 0.5) / scale
    amounts = np.concatenate(
        [
            halves,
            np.nextafter(halves, 0),
            np.nextafter(halves, np.inf),
            rng.uniform(0, 1000, 2000),
            -rng.uniform(0, 10, 50),
            [0.0, -0.0, -0.001, 1.005, 0.1 + 0.2, 2.675, 1e-300, 5e-324, 4503599627370495.5 / scale],
        ]
    )
    expected = [f"{amount:.{money.decimals}f}" for amount in amounts]
    assert money_text(pa.array(amounts), money).to_pylist() == expected
    assert expected == [money.format(amount) for amount in amounts]


def test_bids_formatting_cannot_do_exactly_are_the_currencys_own_format():
    money = currencies.currency("USD")
    amounts = [float("nan"), float("inf"), -float("inf"), 1e20, 2.0**60, 1e300, None]
    assert money_text(pa.array(amounts), money).to_pylist() == [money.format(a) for a in amounts[:-1]] + ["nan"]
    assert money_text(pa.array([2**60 + 1, 5], pa.int64()), money).to_pylist() == [
        money.format(2**60 + 1),
        "5.00",
    ]


def test_the_warehouse_file_is_the_rules_over_the_whole_partition_with_progress(tmp_path):
    store = Warehouse(str(tmp_path / "warehouse"))
    day = dt.date(2025, 4, 1)
    bids = hostile_bids()
    store.write_partition(tables.BIDS, day, bids)
    lines: list[str] = []
    write_ads_editor_csv(store, tables.BIDS, day, "exports/bids.csv", batch_rows=7, currency="JPY", log=lines.append)
    assert store.read_bytes("exports/bids.csv") == reference_csv(bids, currency="JPY")
    write_ads_editor_csv(store, tables.BIDS, day, "exports/quiet.csv", batch_rows=7)
    assert store.read_bytes("exports/quiet.csv") == reference_csv(bids)


def test_progress_is_logged_per_batch_on_a_long_write(tmp_path, monkeypatch):
    from daily_bids import progress

    monkeypatch.setattr(progress, "PROGRESS_EVERY_SECONDS", 0.0)
    store = Warehouse(str(tmp_path / "warehouse"))
    day = dt.date(2025, 4, 1)
    store.write_partition(tables.BIDS, day, hostile_bids())
    lines: list[str] = []
    write_ads_editor_csv(store, tables.BIDS, day, "exports/bids.csv", batch_rows=10, log=lines.append)
    assert lines and all(line.startswith(f"writing the Ads Editor CSV for {day}: ") for line in lines)
    assert f"10 of {len(hostile_bids())} rows" in lines[0]


TEXTS = st.one_of(
    st.none(),
    st.just(NOT_REPORTED),
    st.text(max_size=12),
    st.tuples(st.sampled_from(FORMULA_LEADS), st.text(max_size=8)).map("".join),
    st.text(alphabet="\",\r\n\u2028\u0085\t =+-@'é🥾", max_size=10),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 2**63 - 1),
            st.one_of(st.none(), st.just(""), st.just(NOT_REPORTED), st.integers(0, 10**18 - 1).map(str)),
            *([TEXTS] * len(TEXT_COLUMNS)),
            st.one_of(
                st.floats(0, 10_000, allow_nan=False),
                st.integers(0, 10**6).map(lambda cents: cents / 100),
                st.integers(0, 10**6).map(lambda cents: (cents + 0.5) / 100),
            ),
        ),
        max_size=20,
    ),
    currency=st.sampled_from(["USD", "JPY", "KRW"]),
    split=st.integers(0, 20),
)
def test_random_bids_match_the_rules_in_batches_and_whole(rows, currency, split):
    bids = pd.DataFrame(rows, columns=["keyword_id", "criterion_id", *TEXT_COLUMNS, "bid"])
    bids = bids.astype({"keyword_id": "int64", "bid": "float64"})
    for column in ("criterion_id", *TEXT_COLUMNS):
        bids[column] = pd.array(bids[column].tolist(), dtype="string")
    expected = reference_csv(bids, currency=currency)
    assert ads_editor_csv(bids, currency=currency) == expected
    pieces = ads_editor_csv(bids.iloc[:split], currency=currency) + ads_editor_csv(
        bids.iloc[split:], with_header=False, currency=currency
    )
    assert pieces == expected
    assert ads_editor_csv(pa.Table.from_pandas(bids, preserve_index=False), currency=currency) == expected
