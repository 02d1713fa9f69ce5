"""The backtest report: one self-contained HTML page with charts, from a run's inputs and figures.

Rendered with the memo's Jinja environment (``memo.render._environment``:
StrictUndefined, autoescaped), from a template the app reads
(``reports/templates/backtest.html.j2``). Charts are drawn by matplotlib
(imported only here and only when a report is asked for, Agg backend) as
inline SVG; their text is drawn as paths, so no caller text reaches the page
unescaped. The same figures give the same page.
"""

from __future__ import annotations

import io

from markupsafe import Markup

from proxyvote.memo.render import _environment

TEMPLATE_NAME = "backtest.html.j2"
MAX_FLIPS = 1000
MAX_CATEGORIES = 8
_COLOURS = ("#1f4e79", "#c0504d", "#4f9a59", "#8064a2", "#d08b00", "#4bacc6", "#7f7f7f", "#9e480e")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "proxyvote-backtest"  # stable ids: the same page each time
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    import matplotlib.pyplot as plt

    return plt


def _svg(plt, fig) -> Markup:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # our own drawing, text as paths


def _for_rate(votes: dict) -> float | None:
    decided = sum(n for v, n in votes.items() if v != "REFER")
    return votes.get("FOR", 0) / decided if decided else None


def support_chart(plt, figures: dict) -> Markup:
    """Per policy: the share of FOR votes by category, year by year."""
    policies = figures["policies"]
    fig, axes = plt.subplots(1, len(policies), figsize=(5.2 * len(policies), 3.6), squeeze=False, sharey=True)
    for ax, p in zip(axes[0], policies, strict=True):
        cells = p["votes_by_category_year"]
        totals: dict[str, int] = {}
        for key, votes in cells.items():
            category = key.split("|")[0]
            totals[category] = totals.get(category, 0) + sum(votes.values())
        top = sorted(totals, key=lambda c: (-totals[c], c))[:MAX_CATEGORIES]
        years = sorted({int(key.split("|")[1]) for key in cells})
        for n, category in enumerate(top):
            points = [(y, _for_rate(cells.get(f"{category}|{y}", {}))) for y in years]
            xs = [y for y, r in points if r is not None]
            ys = [100 * r for _, r in points if r is not None]
            ax.plot(
                xs,
                ys,
                marker="o",
                color=_COLOURS[n % len(_COLOURS)],
                label=category.replace("_", " ").lower(),
            )
        ax.set_xticks(years, [str(y) for y in years])
        ax.set_title(p["policy"], fontsize=10)
        ax.set_ylim(-3, 103)
        ax.set_ylabel("votes FOR, % of decided items")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _svg(plt, fig)


def against_management_chart(plt, figures: dict) -> Markup:
    policies = figures["policies"]
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.5 * len(policies)))
    labels = [p["policy"] for p in policies]
    rates = [100 * (p["against_management"]["rate"] or 0) for p in policies]
    refer = [100 * (p["refer"]["rate"] or 0) for p in policies]
    ys = range(len(labels))
    ax.barh([y + 0.2 for y in ys], rates, height=0.4, color=_COLOURS[1], label="against management")
    ax.barh([y - 0.2 for y in ys], refer, height=0.4, color=_COLOURS[6], label="referred to a human")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("% of items")
    ax.set_xlim(0, max(rates + refer + [1]) * 1.15)
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _svg(plt, fig)


def agreement_chart(plt, figures: dict) -> Markup | None:
    policies = figures["policies"]
    parties = []
    for kind, key in (
        ("outcome", None),
        ("adviser", "agreement_with_advisers"),
        ("investor", "agreement_with_investors"),
    ):
        names = ["outcome"] if key is None else sorted({n for p in policies for n in p[key]})
        parties += [(kind, name, key) for name in names]

    def entry(p, kind, name, key):
        return p["agreement_with_outcome"] if key is None else p[key].get(name)

    parties = [x for x in parties if any((entry(p, *x) or {}).get("total") for p in policies)]
    if not parties:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.8 + 0.35 * len(parties) * len(policies)))
    height = 0.8 / len(policies)
    for n, p in enumerate(policies):
        rates = [100 * ((entry(p, *x) or {}).get("agreement_rate") or 0) for x in parties]
        ys = [i + n * height for i in range(len(parties))]
        ax.barh(ys, rates, height=height, color=_COLOURS[n % len(_COLOURS)], label=p["policy"])
    labels = [("winning side" if kind == "outcome" else f"{kind}: {name}") for kind, name, _ in parties]
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(parties))], labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("agreement, % of items where both voted")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _svg(plt, fig)


def render_report(template: str, inputs: dict, figures: dict) -> str:
    """The report page for one run."""
    plt = _pyplot()
    env = _environment({TEMPLATE_NAME: template})
    labels = [p["policy"] for p in figures["policies"]]
    return env.get_template(TEMPLATE_NAME).render(
        inputs=inputs,
        figures=figures,
        labels=labels,
        flips=figures["flips"][:MAX_FLIPS],
        more_flips=max(0, len(figures["flips"]) - MAX_FLIPS),
        charts={
            "support": support_chart(plt, figures),
            "against_management": against_management_chart(plt, figures),
            "agreement": agreement_chart(plt, figures),
        },
    )
