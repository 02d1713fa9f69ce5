"""human-rights-esg written by hand in plain Python: the engine benchmark's baseline.

The same decisions as ``policies/human-rights-esg.yaml`` (its own rules, then
governance-baseline's it does not redefine, in that order) on already
classified items, with the same vote, rule id, against-management flag,
strength, rationale text and cited evidence; no trace, no CEL, no policy
data. It is what the policy costs with nothing general about it, so
engine / hand-written says what the engine's generality costs.

run.py checks item by item that this agrees with the engine before timing
anything, and that the compiled policy still has the rule order below, so a
change to the policy files fails the benchmark loudly instead of comparing
two different policies.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

# The rule order this file implements (own rules, then inherited ones).
RULE_ORDER = (
    "anti-esg-counterproposal",
    "unplaced-item",
    "hr-outright-ban-overprescriptive",
    "hr-technology-risk-assessment",
    "hr-digital-rights-disclosure",
    "hr-due-diligence-and-impact-assessment",
    "dei-disclosure-and-audit",
    "environment-disclosure",
    "emissions-targets",
    "other-social-disclosure",
    "esg-action-request",
    "environmental-social-case-by-case",
    "management-environmental-social-item",
    "director-election",
    "auditor-ratification",
    "say-on-pay-frequency-annual",
    "say-on-pay",
    "shareholder-rights-management-amendment",
    "case-by-case-management-item",
    "independent-chair",
    "shareholder-rights",
    "poison-pill-to-vote",
    "one-share-one-vote",
    "lobbying-and-political-spending-disclosure",
    "shareholder-compensation-proposal",
    "shareholder-governance-proposal",
    "environmental-social-follow-board",
)

SHAREHOLDER = "SHAREHOLDER"
MANAGEMENT = "MANAGEMENT"
REFER = "REFER"
NONE = "NONE"

BAN_TOPICS = frozenset(
    {
        "facial_recognition",
        "government_surveillance",
        "customer_due_diligence",
        "ai_governance",
        "privacy",
        "content_governance",
    }
)
TECH_TOPICS = frozenset(
    {"facial_recognition", "government_surveillance", "customer_due_diligence", "ai_governance"}
)
DIGITAL_TOPICS = frozenset({"privacy", "content_governance"})
HRDD_TOPICS = frozenset(
    {
        "human_rights_impact_assessment",
        "human_rights_due_diligence",
        "supply_chain_labor",
        "freedom_of_association",
        "worker_safety",
        "human_capital",
    }
)
EMISSIONS_TOPICS = frozenset({"emissions_targets", "climate_report"})
RIGHTS_TOPICS = frozenset(
    {"special_meeting_threshold", "written_consent", "declassify_board", "majority_voting", "proxy_access"}
)
INFLUENCE_TOPICS = frozenset({"lobbying_disclosure", "political_spending"})

DISCLOSURE = frozenset({"report", "assessment", "study", "due_diligence", "audit"})
DISCLOSURE_OR_POLICY = DISCLOSURE | {"policy"}
SOCIAL_DISCLOSURE = frozenset({"report", "assessment", "study", "audit"})
TARGET_OR_POLICY = frozenset({"target", "policy"})

ES_CATEGORIES = frozenset(
    {
        "ENVIRONMENT_OR_CLIMATE",
        "HUMAN_RIGHTS_OR_HUMAN_CAPITAL",
        "DIVERSITY_EQUITY_INCLUSION",
        "OTHER_SOCIAL_ISSUES",
    }
)
CASE_BY_CASE_CATEGORIES = frozenset(
    {
        "COMPENSATION",
        "EXTRAORDINARY_TRANSACTIONS",
        "CAPITAL_STRUCTURE",
        "CORPORATE_GOVERNANCE",
        "SHAREHOLDER_RIGHTS_AND_DEFENSES",
        "INVESTMENT_COMPANY_MATTERS",
    }
)
GOVERNANCE_CATEGORIES = frozenset(
    {"CORPORATE_GOVERNANCE", "SHAREHOLDER_RIGHTS_AND_DEFENSES", "DIRECTOR_ELECTIONS"}
)


ADVERSE = frozenset({"CONTROVERSY", "ALLEGATION"})
THREE_YEARS = dt.timedelta(days=round(365.25 * 3))
SWAP = {"AGAINST": "WITHHOLD", "WITHHOLD": "AGAINST"}

DEFAULT_WHY = "No rule of this policy decides this item; an analyst must decide. Nothing is voted by default."


class Decision(NamedTuple):
    item_id: str
    vote: str
    rule_id: str
    against_management: bool
    strength: str
    rationale: str
    cited_evidence_ids: tuple[str, ...]


def decide_meeting(meeting, classifications, view) -> list[Decision]:
    issuer = meeting.issuer.name
    return [
        decide_item(item, c, view, issuer) for item, c in zip(meeting.items, classifications, strict=True)
    ]


def _cast(vote: str, item) -> str | None:
    """The vote to cast, or None when the card cannot carry it (the rule then does not apply)."""
    options = item.vote_options
    if vote == REFER or not options or vote in options:
        return vote
    swap = SWAP.get(vote)
    if swap and swap in options:
        return swap
    return None


def _decision(item, vote, rule_id, rationale, strength="", cited=()) -> Decision:
    board = item.board_recommendation
    against = vote != REFER and board != NONE and vote != board
    return Decision(item.item_id, vote, rule_id, against, strength, rationale, cited)


def _controversies(view, topics) -> list | None:
    """Adverse records on ``topics`` from the 3 years before as-of; None when no evidence is on record."""
    if not view.covered:
        return None
    since = view.as_of - THREE_YEARS
    wanted = frozenset(topics)
    return [
        r
        for r in view.records
        if r.kind in ADVERSE and r.published >= since and not wanted.isdisjoint(r.topics)
    ]


def _citation(r) -> str:
    publisher = r.sources[0].publisher if r.sources else "unattributed"
    if r.status == "DISPUTED":
        status = ", disputed"
    elif r.status == "COMPANY_STATEMENT":
        status = ", the company's statement"
    else:
        status = ""
    kind = ", an allegation" if r.kind == "ALLEGATION" else ""
    return f"{publisher}, {r.published.isoformat()}{kind}{status}"


def _with_strength(item, vote, rule_id, why, strong_why, records) -> Decision:
    """A FOR that is "strong" when related controversies are on record, citing them."""
    if not records:
        return _decision(item, vote, rule_id, why, "standard")
    cited = sorted({r.evidence_id: r for r in records}.values(), key=lambda r: (r.published, r.evidence_id))
    text = "; ".join(_citation(r) for r in cited)
    return _decision(
        item,
        vote,
        rule_id,
        why + " " + strong_why.format(cited=text),
        "strong",
        tuple(r.evidence_id for r in cited),
    )


def decide_item(item, c, view, issuer: str) -> Decision:
    kind = item.proponent_kind
    shareholder = kind == SHAREHOLDER
    management = kind == MANAGEMENT
    flags = c.flags
    if shareholder and "anti_esg" in flags:
        vote = _cast("AGAINST", item)
        if vote:
            return _decision(
                item,
                vote,
                "anti-esg-counterproposal",
                "The request would roll back or discredit the company's ESG practices: it asks the company "
                "to abandon, or to cast doubt on, its environmental, social or human-rights commitments "
                '(often in ESG words such as "risks", "congruency" or "civil liberties"). This policy '
                "supports those commitments.",
            )
    if c.source == "UNPLACED":
        return _decision(
            item,
            REFER,
            "unplaced-item",
            "The item could not be classified, so no position of this policy applies; "
            "an analyst must decide.",
        )
    topics = c.topics
    categories = c.npx_categories
    request = c.request_kind
    topic = (c.topic or "unclassified").replace("_", " ")
    es = not ES_CATEGORIES.isdisjoint(categories)

    if shareholder:
        if request == "prohibit" and not BAN_TOPICS.isdisjoint(topics):
            vote = _cast("AGAINST", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "hr-outright-ban-overprescriptive",
                    "The request prescribes an outcome (a ban or moratorium) rather than asking for "
                    "disclosure or an assessment; this policy prefers proposals that let shareholders "
                    "judge the risk and leave the means to the board.",
                )
        if request in DISCLOSURE:
            if not TECH_TOPICS.isdisjoint(topics):
                vote = _cast("FOR", item)
                if vote:
                    return _with_strength(
                        item,
                        vote,
                        "hr-technology-risk-assessment",
                        f"An independent assessment of how customers use high-risk technology ({topic}) "
                        "lets shareholders judge the human-rights, legal and reputational risk the "
                        "company carries.",
                        f"Support is firmer because {issuer} faces related controversies on record: "
                        "{cited}.",
                        _controversies(view, topics + ("customer_due_diligence", "human_rights")),
                    )
            if not DIGITAL_TOPICS.isdisjoint(topics):
                vote = _cast("FOR", item)
                if vote:
                    return _with_strength(
                        item,
                        vote,
                        "hr-digital-rights-disclosure",
                        f"Disclosure of how the company manages {topic} risks to users and the public lets "
                        "shareholders judge a material human-rights risk.",
                        "Related controversies on record: {cited}.",
                        _controversies(view, topics),
                    )
        prescriptive = "prescriptive" in flags
        if request in DISCLOSURE_OR_POLICY and not prescriptive and not HRDD_TOPICS.isdisjoint(topics):
            vote = _cast("FOR", item)
            if vote:
                return _with_strength(
                    item,
                    vote,
                    "hr-due-diligence-and-impact-assessment",
                    "Human-rights due diligence and impact assessment (UN Guiding Principles) help the "
                    f"company find and address its most severe risks ({topic}), and the request leaves the "
                    "means to the board.",
                    "Support is firmer given related controversies on record: {cited}.",
                    _controversies(view, topics + ("human_rights",)),
                )
        if request in DISCLOSURE and "DIVERSITY_EQUITY_INCLUSION" in categories:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "dei-disclosure-and-audit",
                    f"Disclosure or an audit of {topic} lets shareholders judge how the company manages "
                    "workforce equity and the legal and human-capital risks of falling short.",
                )
        if request in DISCLOSURE and not prescriptive and "ENVIRONMENT_OR_CLIMATE" in categories:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "environment-disclosure",
                    f"Reporting on {topic} gives shareholders decision-useful information on environmental "
                    "risk at reasonable cost; this sustainability policy supports it.",
                )
        if request in TARGET_OR_POLICY and not prescriptive and not EMISSIONS_TOPICS.isdisjoint(topics):
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "emissions-targets",
                    "Setting emissions-reduction targets, with the path left to the board, is how a company "
                    "shows it manages transition risk.",
                )
        if request in SOCIAL_DISCLOSURE and not prescriptive and "OTHER_SOCIAL_ISSUES" in categories:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "other-social-disclosure",
                    f"Disclosure on {topic} lets shareholders judge a social risk the company carries, at "
                    "reasonable cost.",
                )
        if es and "anti_esg" not in flags and not prescriptive:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "esg-action-request",
                    f"The request asks the company to do more on {topic} and leaves the means to the board; "
                    "specialist ESG investors support such requests, and this policy does too.",
                )
        if es:  # REFER is always castable
            return _decision(
                item,
                REFER,
                "environmental-social-case-by-case",
                f"The proposal on {topic} asks for more than disclosure or an assessment (a policy, target "
                "or operational change); this policy weighs such requests case by case against the company's "
                "gaps, so an analyst must decide.",
            )
    elif management and es:
        return _decision(
            item,
            REFER,
            "management-environmental-social-item",
            f"A management proposal on {topic} (for example a say-on-climate vote) needs an analyst's "
            "judgement of the plan.",
        )

    # governance-baseline's rules.
    if management:
        if "director_election" in topics:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "director-election",
                    "Supports the board's nominee; this policy records no accountability concern about the "
                    "nominee.",
                )
        if "auditor_ratification" in topics:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "auditor-ratification",
                    "Ratification of the auditor is routine absent concerns about independence or non-audit "
                    "fees.",
                )
    if "say_on_pay_frequency" in topics:
        vote = _cast("ONE_YEAR", item)
        if vote:
            return _decision(
                item,
                vote,
                "say-on-pay-frequency-annual",
                "An annual say-on-pay vote gives shareholders the most regular check on pay.",
            )
    if management:
        if "say_on_pay" in topics:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "say-on-pay",
                    "Supports the advisory vote on executive pay absent a recorded "
                    "pay-for-performance concern.",
                )
        if (
            "SHAREHOLDER_RIGHTS_AND_DEFENSES" in categories
            and "extends_shareholder_rights" in flags
            and "restricts_shareholder_rights" not in flags
        ):
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "shareholder-rights-management-amendment",
                    f"The amendment extends shareholders' rights ({topic}), which this policy supports.",
                )
        if not CASE_BY_CASE_CATEGORIES.isdisjoint(categories):
            return _decision(
                item,
                REFER,
                "case-by-case-management-item",
                f"This policy decides {topic} items case by case (terms, dilution, rights affected); an "
                "analyst must review them.",
            )
    elif shareholder:
        if "independent_chair" in topics:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "independent-chair",
                    "An independent chair strengthens the board's oversight of management.",
                )
        if not RIGHTS_TOPICS.isdisjoint(topics):
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "shareholder-rights",
                    f"The proposal extends shareholders' rights ({topic}), which this policy supports.",
                )
        if "poison_pill" in topics:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "poison-pill-to-vote",
                    "Takeover defences such as a rights plan should be put to shareholders.",
                )
        if "equal_voting_rights" in flags:
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "one-share-one-vote",
                    "Equal voting rights align control with economic ownership.",
                )
        if "anti_esg" not in flags and not INFLUENCE_TOPICS.isdisjoint(topics):
            vote = _cast("FOR", item)
            if vote:
                return _decision(
                    item,
                    vote,
                    "lobbying-and-political-spending-disclosure",
                    "Disclosure of lobbying and political spending lets shareholders judge the governance "
                    "risk of the company's influence activities.",
                )
        if "COMPENSATION" in categories:
            return _decision(
                item,
                REFER,
                "shareholder-compensation-proposal",
                "Shareholder proposals on pay are weighed case by case against the company's practice; an "
                "analyst must review.",
            )
        if not GOVERNANCE_CATEGORIES.isdisjoint(categories):
            return _decision(
                item,
                REFER,
                "shareholder-governance-proposal",
                f"This governance proposal ({topic}) is not one of the positions this policy takes; an "
                "analyst must review.",
            )
        # environmental-social-follow-board is shadowed in this policy: its items (E&S categories,
        # shareholder proponent) were all decided by environmental-social-case-by-case above.
    return _decision(item, REFER, "default", DEFAULT_WHY)
