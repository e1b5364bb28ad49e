"""The morning report: what yesterday's bids earned, what today's are expected to, and what needs a look.

Partition D is read on the morning of D+1, once the bids made in partition D are published:
- yesterday (day D): the report's clicks, spend, value, profit and ROAS under the bids that were in force, against
  what was predicted for that day in partition D-1 (`keyword_predictions`, and for the bids we had published, the
  expected spend of `keyword_bids`);
- today (day D+1): the expected clicks, spend, value and profit of the bids of partition D, against yesterday's
  actuals and against keeping the bids in force;
- the same per campaign, the largest bid moves with what decided them, and the checks that warned or failed.

Where no bid landscape priced a bid, its clicks are assumed not to respond to the bid, and a click is assumed to cost
its whole bid (the most it can cost): the report says "clicks assumed unchanged" there. Keeping the bids in force is
priced only where the landscape priced it: at unchanged clicks any lower bid would look more profitable.

Money is in the account's currency (`BIDS_CURRENCY`), shown with as many decimals as its billable unit needs:
`1,234.50 USD`, `1,234 JPY`.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from daily_bids.bidding import moves
from daily_bids.charts import figure_png, pyplot
from daily_bids.currency import DEFAULT_CURRENCY, format_amount
from daily_bids.schema import numeric

# The bids listed under "largest bid moves".
TOP_MOVES = 10

# The four views of the account, in the order the report shows them.
SCENARIOS: dict[str, str] = {
    "actual": "yesterday, actual",
    "predicted": "yesterday, predicted",
    "expected": "today, expected",
    "kept": "today, keeping the bids in force",
}
AMOUNTS = ("clicks", "spend", "value", "profit")
FIGURES = (*AMOUNTS, "roas")
MONEY = ("spend", "value", "profit")
CLICKS_ASSUMED_UNCHANGED = "clicks assumed unchanged"

# What each `bid_basis` of keyword_bids means, in words.
BASIS_REASONS = {
    "profit_optimal": "highest expected profit on the bid landscape",
    "fixed_margin": f"value per click less the target margin ({CLICKS_ASSUMED_UNCHANGED})",
    "cold_start": f"little history: the cluster's value per click, wider margin ({CLICKS_ASSUMED_UNCHANGED})",
    "configured_value": f"the configured value per click, BIDS_VALUE_PER_CLICK ({CLICKS_ASSUMED_UNCHANGED})",
}
# Yes/no columns of keyword_bids that explain a bid, where the table carries them.
FLAG_REASONS = {
    "exploration": "explored (moved at random within the rules, to learn the landscape)",
    "change_capped": "held at the daily change cap from the bid in force",
    "lowered_to_ceiling": "lowered past the change cap to what a click is surely worth (the money rule)",
}

# The columns the report reads of each input, where the table carries them: a large account's partitions are read
# for these only.
REPORT_INPUTS = ("keyword_id", "campaign", "clicks", "cost", "conversion_value", "max_cpc")
PREDICTION_INPUTS = ("keyword_id", "campaign", "expected_clicks", "expected_value")
BID_INPUTS = (
    "keyword_id",
    "keyword",
    "campaign",
    "bid",
    "expected_clicks",
    "expected_value_per_click",
    "expected_cost_per_click",
    "bid_basis",
    *FLAG_REASONS,
)


@dataclass(frozen=True)
class CheckOutcome:
    """A check's latest verdict on the partition."""

    asset: str
    check: str
    passed: bool
    severity: str  # "WARN" or "ERROR"
    description: str


@dataclass(frozen=True)
class BidsInForce:
    """Each keyword's bid in force on day D (the bids today's are set against), and where they came from."""

    bids: pd.Series  # keyword_id → bid; keywords without a known bid are absent
    source: str


def bids_in_force(report: pd.DataFrame, published_before: pd.DataFrame | None, day: dt.date) -> BidsInForce:
    """The report's max CPC of day D where it has one, else the bid we published for D (the `published_bids` ledger
    of partition D-1): `daily_bids.bidding.moves.bids_in_force`, which the bids and their checks use too."""
    reported = report if "max_cpc" in report.columns else None
    in_force = moves.bids_in_force(reported, published_before)
    bids = pd.Series(in_force["bid"].to_numpy(dtype="float64"), index=in_force["keyword_id"].to_numpy())
    from_report = int((numeric(reported["max_cpc"]) > 0).sum()) if reported is not None else 0
    parts = []
    if from_report:
        parts.append(f"the max CPC of the {day} report ({from_report:,} keywords)")
    if published_before is not None and len(published_before):
        parts.append(f"the bids published for {day} ({len(published_before):,} keywords)")
    source = " where known, else ".join(parts) if parts else "not known (the reports carry no max CPC)"
    return BidsInForce(bids.rename_axis("keyword_id"), source)


def _per_campaign(campaign: pd.Series, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({name: np.asarray(values, dtype="float64") for name, values in columns.items()})
    frame["campaign"] = campaign.astype("string").fillna("(not reported)").to_numpy()
    return frame.groupby("campaign", sort=True).sum(min_count=1)


def actual_figures(report: pd.DataFrame) -> pd.DataFrame:
    """Per campaign: the day's clicks, spend (cost) and value (conversion value) as reported; unreported: NaN."""
    columns = {
        "clicks": numeric(report["clicks"]),
        "spend": numeric(report["cost"]) if "cost" in report.columns else np.full(len(report), np.nan),
        "value": (
            numeric(report["conversion_value"])
            if "conversion_value" in report.columns
            else np.full(len(report), np.nan)
        ),
    }
    return _per_campaign(report["campaign"], columns)


def predicted_figures(predictions: pd.DataFrame, bids_in_force: pd.DataFrame | None) -> pd.DataFrame:
    """Per campaign, what partition D-1 predicted for day D: the clicks and value of `predictions` (keyword_predictions
    of D-1, at the bids then in force) and, where our bids of D-1 were in force (`bids_in_force`: keyword_bids of D-1,
    published), their keywords' expected clicks, value and spend at those bids. Spend is known only for them."""
    clicks = predictions["expected_clicks"].to_numpy(dtype="float64").copy()
    value = numeric(predictions["expected_value"]).copy()
    spend = np.full(len(predictions), np.nan)
    if bids_in_force is not None and len(bids_in_force):
        ours = bids_in_force.set_index("keyword_id").reindex(predictions["keyword_id"].to_numpy())
        bid = ours["bid"].notna().to_numpy()
        bid_clicks = ours["expected_clicks"].to_numpy(dtype="float64")
        clicks[bid] = bid_clicks[bid]
        value[bid] = (bid_clicks * ours["expected_value_per_click"].to_numpy(dtype="float64"))[bid]
        spend[bid] = (bid_clicks * ours["expected_cost_per_click"].to_numpy(dtype="float64"))[bid]
    return _per_campaign(predictions["campaign"], {"clicks": clicks, "value": value, "spend": spend})


def expected_figures(bids: pd.DataFrame) -> pd.DataFrame:
    """Per campaign, today's bids (keyword_bids of D): expected clicks, and their value and spend at those bids."""
    clicks = bids["expected_clicks"].to_numpy(dtype="float64")
    return _per_campaign(
        bids["campaign"],
        {
            "clicks": clicks,
            "value": clicks * bids["expected_value_per_click"].to_numpy(dtype="float64"),
            "spend": clicks * bids["expected_cost_per_click"].to_numpy(dtype="float64"),
        },
    )


@dataclass(frozen=True)
class KeptPricing:
    """Expected clicks and cost per click at the bid in force, for the keywords the bid landscape priced today:
    `clicks` and `cost_per_click` indexed by keyword_id."""

    clicks: pd.Series
    cost_per_click: pd.Series


def kept_figures(bids: pd.DataFrame, in_force: BidsInForce, pricing: KeptPricing | None) -> tuple[pd.DataFrame, int]:
    """Per campaign, today's keywords had they kept their bid in force, and how many bids that could be priced.

    Only the bid landscape says what another bid would bring (`pricing`: its clicks and cost per click at the bid in
    force). Elsewhere clicks are assumed unchanged, so a lower bid would always look more profitable: such a keyword
    counts as bid as today, and with no keyword priced every figure is unknown (NaN)."""
    ids = bids["keyword_id"].to_numpy()
    clicks = bids["expected_clicks"].to_numpy(dtype="float64").copy()
    cost_per_click = bids["expected_cost_per_click"].to_numpy(dtype="float64").copy()
    old = in_force.bids.reindex(ids).to_numpy(dtype="float64")
    priced = np.zeros(len(bids), dtype=bool)
    if pricing is not None:
        priced_clicks = pricing.clicks.reindex(ids).to_numpy(dtype="float64")
        priced_cost = pricing.cost_per_click.reindex(ids).to_numpy(dtype="float64")
        priced = np.isfinite(old) & np.isfinite(priced_clicks) & np.isfinite(priced_cost)
        # A click costs at most the bid (second-price auctions), as the bids' own pricing has it.
        clicks[priced], cost_per_click[priced] = priced_clicks[priced], np.minimum(priced_cost, old)[priced]
    if not priced.any():
        clicks[:], cost_per_click[:] = np.nan, np.nan
    value_per_click = bids["expected_value_per_click"].to_numpy(dtype="float64")
    figures = _per_campaign(
        bids["campaign"], {"clicks": clicks, "value": clicks * value_per_click, "spend": clicks * cost_per_click}
    )
    return figures, int(priced.sum())


def with_ratios(figures: pd.DataFrame) -> pd.DataFrame:
    """`figures` (clicks, spend, value) with profit (value − spend) and ROAS (value / spend)."""
    out = figures.reindex(columns=["clicks", "spend", "value"])
    out["profit"] = out["value"] - out["spend"]
    spend = out["spend"].where(out["spend"] > 0)
    out["roas"] = out["value"] / spend
    return out


def bid_moves(bids: pd.DataFrame, in_force: BidsInForce, top: int = TOP_MOVES) -> tuple[pd.DataFrame, dict[str, int]]:
    """The `top` bids that moved most from their bid in force (by ratio, up or down), with what decided each, and
    counts of bids raised, lowered, unchanged and without a known bid in force."""
    old = in_force.bids.reindex(bids["keyword_id"].to_numpy()).to_numpy(dtype="float64")
    new = bids["bid"].to_numpy(dtype="float64")
    change = new - old
    known = np.isfinite(old) & (old > 0)
    counts = {
        "raised": int((known & (change >= 0.005)).sum()),
        "lowered": int((known & (change <= -0.005)).sum()),
        "unchanged": int((known & (np.abs(change) < 0.005)).sum()),
        "no_bid_in_force": int((~known).sum()),
    }
    moved = bids.loc[known].assign(bid_in_force=old[known], change=change[known])
    moved = moved[moved["change"].abs() >= 0.005]
    size = np.abs(np.log(moved["bid"].to_numpy(dtype="float64") / moved["bid_in_force"].to_numpy(dtype="float64")))
    largest = moved.iloc[np.argsort(-size, kind="stable")[:top]]
    table = pd.DataFrame(
        {
            "keyword_id": largest["keyword_id"].to_numpy(),
            "keyword": largest["keyword"].astype("string").to_numpy() if "keyword" in largest else "",
            "campaign": largest["campaign"].astype("string").to_numpy(),
            "bid_in_force": largest["bid_in_force"].to_numpy(dtype="float64"),
            "new_bid": largest["bid"].to_numpy(dtype="float64"),
            "change": (largest["change"] / largest["bid_in_force"]).to_numpy(dtype="float64"),
            "reason": [bid_reason(row) for _, row in largest.iterrows()],
        }
    )
    return table, counts


def bid_reason(row: pd.Series) -> str:
    """What decided a bid, in words: its `bid_basis`, and each yes/no column of FLAG_REASONS that is set."""
    basis = str(row.get("bid_basis", ""))
    reasons = [BASIS_REASONS.get(basis, basis)] if basis else []
    reasons += [text for column, text in FLAG_REASONS.items() if column in row.index and bool(row[column])]
    return "; ".join(reasons) or "not recorded"


@dataclass(frozen=True)
class MorningReport:
    """The report of partition `day`, for the bids in force on `day + 1`."""

    day: dt.date
    campaigns: pd.DataFrame  # per campaign, `{scenario}_{figure}` for each of SCENARIOS and FIGURES
    moves: pd.DataFrame
    move_counts: dict[str, int]
    checks: list[CheckOutcome]
    bids_in_force_source: str
    kept_priced: int  # today's bids whose bid in force the landscape priced: what "keeping the bids" rests on
    notes: list[str] = field(default_factory=list)
    currency: str = DEFAULT_CURRENCY

    @property
    def effective_day(self) -> dt.date:
        return self.day + dt.timedelta(days=1)

    def account(self) -> pd.DataFrame:
        """The account's totals: a row per figure, a column per scenario."""
        totals = {
            scenario: with_ratios(
                self.campaigns[[f"{scenario}_{name}" for name in AMOUNTS[:3]]]
                .sum(min_count=1)
                .set_axis(list(AMOUNTS[:3]))
                .to_frame()
                .T
            ).iloc[0]
            for scenario in SCENARIOS
        }
        return pd.DataFrame(totals).reindex(list(FIGURES))

    def problems(self) -> list[CheckOutcome]:
        return [check for check in self.checks if not check.passed]

    def table(self) -> pd.DataFrame:
        """The stored table: one row per campaign."""
        return self.campaigns.reset_index()

    # --- rendering -----------------------------------------------------------------------------------------------

    def money(self, amount: float) -> str:
        return format_money(amount, self.currency)

    def _figure(self, name: str, amount: float) -> str:
        if name in MONEY:
            return self.money(amount)
        if not np.isfinite(amount):
            return "—"
        return f"{amount:.2f}" if name == "roas" else f"{amount:,.0f}"

    def account_view(self) -> pd.DataFrame:
        """The account table as people read it: formatted figures, and today's changes."""
        account = self.account()
        view = pd.DataFrame(
            {label: [self._figure(name, account.loc[name, s]) for name in FIGURES] for s, label in SCENARIOS.items()},
            index=[name if name != "roas" else "ROAS" for name in FIGURES],
        )
        for label, against in (("today vs yesterday", "actual"), ("today vs keeping the bids", "kept")):
            view[label] = [
                _difference(name, account.loc[name, "expected"], account.loc[name, against], self.currency)
                for name in FIGURES
            ]
        if not self.kept_priced:
            view[[SCENARIOS["kept"], "today vs keeping the bids"]] = f"not priced: {CLICKS_ASSUMED_UNCHANGED}"
        return view.rename_axis(f"amounts in {self.currency}")

    def campaign_view(self) -> pd.DataFrame:
        c = self.campaigns
        return pd.DataFrame(
            {
                "clicks yesterday": [self._figure("clicks", v) for v in c["actual_clicks"]],
                "spend yesterday": [self.money(v) for v in c["actual_spend"]],
                "profit yesterday": [self.money(v) for v in c["actual_profit"]],
                "ROAS yesterday": [self._figure("roas", v) for v in c["actual_roas"]],
                "expected clicks": [self._figure("clicks", v) for v in c["expected_clicks"]],
                "expected spend": [self.money(v) for v in c["expected_spend"]],
                "expected profit": [self.money(v) for v in c["expected_profit"]],
                "profit vs keeping the bids": [
                    _signed_money(e - k, self.currency) if self.kept_priced else CLICKS_ASSUMED_UNCHANGED
                    for e, k in zip(c["expected_profit"], c["kept_profit"])
                ],
            },
            index=c.index,
        )

    def moves_view(self) -> pd.DataFrame:
        m = self.moves
        return pd.DataFrame(
            {
                "keyword": [
                    f"{k} ({i})" if pd.notna(k) and k else str(i) for k, i in zip(m["keyword"], m["keyword_id"])
                ],
                "campaign": m["campaign"],
                "bid in force": [self.money(v) for v in m["bid_in_force"]],
                "new bid": [self.money(v) for v in m["new_bid"]],
                "change": [f"{v:+.0%}" for v in m["change"]],
                "why": m["reason"],
            }
        )

    def checks_view(self) -> pd.DataFrame:
        problems = self.problems()
        return pd.DataFrame(
            {
                "asset": [c.asset for c in problems],
                "check": [c.check for c in problems],
                "severity": [("failed" if c.severity == "ERROR" else "warned") for c in problems],
                "what it says": [c.description for c in problems],
            }
        )

    def summary_lines(self) -> list[str]:
        account = self.account()
        counts = self.move_counts
        lines = [
            f"Bids in force on {self.day}: {self.bids_in_force_source}.",
            f"Yesterday ({self.day}) the account spent {self.money(account.loc['spend', 'actual'])} for "
            f"{self.money(account.loc['value', 'actual'])} of value: a profit of "
            f"{self.money(account.loc['profit', 'actual'])}.",
            f"Today ({self.effective_day}) the new bids are expected to make "
            f"{self.money(account.loc['profit', 'expected'])}"
            + (
                f" ({_signed_money(account.loc['profit', 'expected'] - account.loc['profit', 'kept'], self.currency)}"
                " against keeping the bids in force)."
                if self.kept_priced
                else "."
            ),
            f"{counts['raised']:,} bids raised, {counts['lowered']:,} lowered, {counts['unchanged']:,} unchanged, "
            f"{counts['no_bid_in_force']:,} without a known bid in force.",
            *self.notes,
        ]
        problems = self.problems()
        lines.append(f"{len(problems)} check(s) warned or failed: see below." if problems else "Every check passed.")
        return lines

    def markdown(self) -> str:
        """The whole report in Markdown."""
        sections = [
            f"# Morning report: bids for {self.effective_day} (report of {self.day})",
            "\n".join(f"- {line}" for line in self.summary_lines()),
            "## The account",
            self.account_view().to_markdown(),
            "## By campaign",
            self.campaign_view().to_markdown(),
            "## Largest bid moves",
            self.moves_view().to_markdown(index=False) if len(self.moves) else "No bid moved.",
            "## Checks that warned or failed",
            self.checks_view().to_markdown(index=False) if self.problems() else "None.",
        ]
        return "\n\n".join(sections) + "\n"

    def html(self, chart_png_base64: str | None = None) -> str:
        """The whole report as one HTML page, the chart inline: a file to mail."""

        def table(frame: pd.DataFrame, index: bool = True) -> str:
            return frame.to_html(index=index, border=0, classes="figures", na_rep="—")

        title = f"Morning report: bids for {self.effective_day} (report of {self.day})"
        chart = (
            f'<img alt="the account, yesterday and today" src="data:image/png;base64,{chart_png_base64}">'
            if chart_png_base64
            else ""
        )
        body = [
            f"<h1>{html.escape(title)}</h1>",
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in self.summary_lines()) + "</ul>",
            "<h2>The account</h2>",
            table(self.account_view()),
            chart,
            "<h2>By campaign</h2>",
            table(self.campaign_view()),
            "<h2>Largest bid moves</h2>",
            table(self.moves_view(), index=False) if len(self.moves) else "<p>No bid moved.</p>",
            "<h2>Checks that warned or failed</h2>",
            table(self.checks_view(), index=False) if self.problems() else "<p>None.</p>",
        ]
        style = (
            "body{font-family:sans-serif;max-width:70em}table.figures{border-collapse:collapse}"
            "table.figures td,table.figures th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
        )
        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )

    def chart_png(self) -> bytes:
        """Spend, value and profit of the account yesterday and today; profit by campaign, yesterday and today."""
        account = self.account()
        figure, (left, right) = pyplot().subplots(1, 2, figsize=(12, 4.5))
        positions = np.arange(len(MONEY))
        width = 0.8 / len(SCENARIOS)
        for n, (scenario, label) in enumerate(SCENARIOS.items()):
            left.bar(positions + n * width, account.loc[list(MONEY), scenario].fillna(0.0), width, label=label)
        left.set_xticks(positions + width * (len(SCENARIOS) - 1) / 2, list(MONEY))
        left.set_ylabel(self.currency)
        left.set_title("the account")
        left.axhline(0, color="black", linewidth=0.5)
        left.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        top = self.campaigns.sort_values("actual_spend", ascending=False).head(10)
        rows = np.arange(len(top))
        right.barh(rows - 0.2, top["actual_profit"].fillna(0.0), 0.4, label="yesterday, actual")
        right.barh(rows + 0.2, top["expected_profit"].fillna(0.0), 0.4, label="today, expected")
        right.set_yticks(rows, [str(name)[:28] for name in top.index])
        right.invert_yaxis()
        right.set_xlabel(f"profit ({self.currency})")
        right.set_title("profit by campaign (largest spend)")
        right.axvline(0, color="black", linewidth=0.5)
        right.legend(fontsize=8)
        return figure_png(figure)


def build_report(
    day: dt.date,
    report: pd.DataFrame,
    predictions_before: pd.DataFrame | None,
    published_bids_before: pd.DataFrame | None,
    bids: pd.DataFrame,
    predictions: pd.DataFrame,
    in_force: BidsInForce,
    checks: list[CheckOutcome],
    pricing: KeptPricing | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> MorningReport:
    """The morning report of partition `day`.

    `report`: the validated report of `day`; `predictions_before`: keyword_predictions of `day - 1` (None on the
    first day); `published_bids_before`: keyword_bids of `day - 1` if they were published (they were then in force
    on `day`); `bids` and `predictions`: keyword_bids and keyword_predictions of `day`; `in_force`: `bids_in_force`;
    `checks`: the checks' latest verdicts on the partition; `pricing`: the landscape's clicks and cost at the bid
    in force, where it priced today's bids."""
    views = {
        "actual": actual_figures(report),
        "predicted": (
            predicted_figures(predictions_before, published_bids_before)
            if predictions_before is not None
            else pd.DataFrame(columns=["clicks", "spend", "value"], dtype="float64")
        ),
        "expected": expected_figures(bids),
    }
    views["kept"], kept_priced = kept_figures(bids, in_force, pricing)
    campaigns = sorted(set().union(*(frame.index for frame in views.values())))
    columns = {
        f"{scenario}_{name}": values
        for scenario, frame in views.items()
        for name, values in with_ratios(frame.reindex(campaigns)).items()
    }
    table = pd.DataFrame(columns, index=pd.Index(campaigns, name="campaign"))
    moves, counts = bid_moves(bids, in_force)
    notes = []
    if predictions_before is None:
        notes.append(f"No predictions were made for {day}: nothing to compare yesterday with.")
    elif published_bids_before is None:
        notes.append(f"No bids of ours were in force on {day}: its spend was not predicted.")
    unpriced = ~bids["bid_basis"].eq("profit_optimal") if "bid_basis" in bids.columns else pd.Series(True)
    if unpriced.any():
        share = f"all {len(bids):,}" if unpriced.all() else f"{int(unpriced.sum()):,} of {len(bids):,}"
        notes.append(
            f"No bid landscape priced {share} bids: {CLICKS_ASSUMED_UNCHANGED} whatever the bid, and a click is "
            "counted at its whole bid, the most it can cost."
        )
    not_bid = len(set(predictions["keyword_id"]) - set(bids["keyword_id"]))
    if not_bid:
        notes.append(
            f"{not_bid:,} {'keyword gets' if not_bid == 1 else 'keywords get'} no bid today: even the lowest allowed "
            "bid would not stay below what a click on them is worth."
        )
    if kept_priced == 0:
        notes.append(
            f"Keeping the bids in force is not priced: no bid landscape says what another bid would bring "
            f"({CLICKS_ASSUMED_UNCHANGED}, so any lower bid would look more profitable)."
        )
    elif kept_priced < len(bids):
        notes.append(
            f"Keeping the bids in force is priced by the bid landscape for {kept_priced:,} of {len(bids):,} bids; "
            f"the others count as bid as today ({CLICKS_ASSUMED_UNCHANGED})."
        )
    return MorningReport(day, table, moves, counts, checks, in_force.source, kept_priced, notes, currency)


def format_money(amount: float, currency: str = DEFAULT_CURRENCY) -> str:
    """An amount with its currency, to its billable unit: `1,234.50 USD`, `1,235 JPY`; unknown: `—`."""
    if amount is None or not np.isfinite(amount):
        return "—"
    return f"{format_amount(amount, currency, thousands=True)} {currency}"


def _signed_money(amount: float, currency: str) -> str:
    if amount is None or not np.isfinite(amount):
        return "—"
    return f"{'-' if amount < 0 else '+'}{format_amount(abs(amount), currency, thousands=True)} {currency}"


def _difference(name: str, new: float, old: float, currency: str) -> str:
    """From `old` to `new`: money as an amount (a profit can change sign), clicks in percent, ROAS in points."""
    if not (np.isfinite(new) and np.isfinite(old)):
        return "—"
    if name in MONEY:
        return _signed_money(new - old, currency)
    if name == "roas":
        return f"{new - old:+.2f}"
    return f"{new / old - 1:+.1%}" if old else "—"
