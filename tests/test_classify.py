"""How ballot items are classified: N-PX categories, topics, requests and flags.

The reference table below holds ballot-item titles as they are worded on
proxy cards, in ISS and Glass Lewis item descriptions and in N-PX vote
records, across many companies and years. Each row says what the classifier
must make of the title: the primary topic, the N-PX categories, and where it
matters the kind of request and the flags an ESG policy tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
from proxyvote.core.classify import classify, classify_meeting
from proxyvote.core.model import BallotItem, CallerCategory
from proxyvote.core.taxonomy import parse_taxonomy
from proxyvote.errors import PolicyInvalid
from proxyvote.wire.convert import meeting_from_json

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY_FILE = ROOT / "policies" / "taxonomy.yaml"

MGMT = "MANAGEMENT"
SH = "SHAREHOLDER"

# N-PX category codes, short enough to keep the table readable.
DIR = "DIRECTOR_ELECTIONS"
SOP = "SECTION_14A_SAY_ON_PAY"
AUD = "AUDIT_RELATED"
FUND = "INVESTMENT_COMPANY_MATTERS"
RIGHTS = "SHAREHOLDER_RIGHTS_AND_DEFENSES"
# Filers tick governance as well on shareholder-rights items, and social as
# well on lobbying and political spending (taxonomy.yaml).
RIGHTS_GOV = ("SHAREHOLDER_RIGHTS_AND_DEFENSES", "CORPORATE_GOVERNANCE")
DEAL = "EXTRAORDINARY_TRANSACTIONS"
CAP = "CAPITAL_STRUCTURE"
COMP = "COMPENSATION"
GOV = "CORPORATE_GOVERNANCE"
ENV = "ENVIRONMENT_OR_CLIMATE"
HR = "HUMAN_RIGHTS_OR_HUMAN_CAPITAL"
DEI = "DIVERSITY_EQUITY_INCLUSION"
SOC = "OTHER_SOCIAL_ISSUES"
OTHER = "OTHER"

# Requests a human-rights policy supports as disclosure rather than a mandate.
DISCLOSURE = ("report", "assessment", "study", "due_diligence", "audit")


@pytest.fixture(scope="module")
def taxonomy():
    return parse_taxonomy(TAXONOMY_FILE.read_text())


def item(title: str, proponent: str = SH, text: str = "", **kwargs) -> BallotItem:
    return BallotItem(item_id="1", title=title, proponent_kind=proponent, text=text, **kwargs)


class Expect(NamedTuple):
    title: str
    proponent: str
    topic: str
    categories: tuple[str, ...]
    # One request kind, a tuple of acceptable ones, or None when it does not matter.
    request: str | tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    # Other topics the item must also carry (policies test any of item.topics).
    also: tuple[str, ...] = ()


def mgmt(title, topic, *categories, request=None, flags=(), also=()):
    return Expect(title, MGMT, topic, categories, request, flags, also)


def sh(title, topic, *categories, request=None, flags=(), also=()):
    return Expect(title, SH, topic, categories, request, flags, also)


# --- Management items ---------------------------------------------------------

DIRECTOR_ELECTIONS = [
    mgmt("Elect Director John A. Smith", "director_election", DIR, request="election"),
    mgmt("Elect Director Mary T. Barra", "director_election", DIR),
    mgmt("Election of Directors", "director_election", DIR, request="election"),
    mgmt("Election of Director: Jane Doe", "director_election", DIR),
    mgmt("1a. Election of Director: Richard K. Templeton", "director_election", DIR),
    mgmt("Proposal 1 - Election of Class II Directors", "director_election", DIR),
    mgmt(
        "To elect eleven directors to serve until the 2025 Annual Meeting of Shareholders",
        "director_election",
        DIR,
    ),
    mgmt("Re-elect Sir Nigel Wilson as Director", "director_election", DIR),
    mgmt("Reelect Jane Doe as Director", "director_election", DIR),
    mgmt("Elect Alan Jope as Director", "director_election", DIR),
    mgmt("Elect Kathryn Smith as Independent Non-Executive Director", "director_election", DIR),
    mgmt("Director: Jane Doe", "director_election", DIR),
    mgmt("DIRECTOR", "director_election", DIR),
    mgmt("Elect Directors (Bundled)", "director_election", DIR),
    mgmt("Elect Supervisory Board Member Klaus Weber", "director_election", DIR),
    mgmt("Elect Trustee Robert J. Jones", "director_election", DIR),
    mgmt("Ratify Appointment of Marie Dupont as Director", "director_election", DIR),
    mgmt("Approve Election of Directors by Cumulative Voting", "majority_voting", *RIGHTS_GOV),
    # In a proxy contest the dissident's nominees are shareholder items.
    sh("Elect Dissident Nominee Director Keith Meister", "director_election", DIR),
]

AUDITORS = [
    mgmt("Ratify KPMG LLP as Auditors", "auditor_ratification", AUD, request="approval"),
    mgmt("Ratify Ernst & Young LLP as Auditors", "auditor_ratification", AUD),
    mgmt("Ratify PricewaterhouseCoopers LLP as Auditor", "auditor_ratification", AUD),
    mgmt("Ratify BDO USA, LLP as Auditors", "auditor_ratification", AUD),
    mgmt("Ratify Auditors", "auditor_ratification", AUD),
    mgmt("Approve Auditors and Authorize Board to Fix Their Remuneration", "auditor_ratification", AUD),
    mgmt(
        "Approve Deloitte & Touche LLP as Auditors and Authorize Board to Fix Their Remuneration",
        "auditor_ratification",
        AUD,
    ),
    mgmt("Reappoint Deloitte LLP as Auditors", "auditor_ratification", AUD),
    mgmt("Authorise the Audit Committee to Fix Remuneration of Auditors", "auditor_ratification", AUD),
    mgmt(
        "Ratification of the Appointment of Independent Registered Public Accounting Firm",
        "auditor_ratification",
        AUD,
    ),
    mgmt(
        "To ratify the selection of Deloitte & Touche LLP as the Company's independent registered "
        "public accounting firm for fiscal 2024",
        "auditor_ratification",
        AUD,
    ),
    mgmt(
        "Ratify the Appointment of KPMG AG as Auditors for Fiscal Year 2024 and for the Review of "
        "Interim Financial Reports",
        "auditor_ratification",
        AUD,
    ),
    mgmt("Appoint PricewaterhouseCoopers Accountants N.V. as Auditors", "auditor_ratification", AUD),
    mgmt("Approve Remuneration of Auditors", "auditor_ratification", AUD),
    sh(
        "Adopt a Policy on Mandatory Rotation of the Independent Auditor",
        "auditor_ratification",
        AUD,
        flags=("prescriptive",),
    ),
    mgmt("Accept Financial Statements and Statutory Reports", "financial_statements", AUD),
    mgmt("Approve Financial Statements and Allocation of Income", "financial_statements", AUD, CAP),
]

SAY_ON_PAY = [
    mgmt("Advisory Vote to Ratify Named Executive Officers' Compensation", "say_on_pay", SOP),
    mgmt("Advisory Vote to Approve Executive Compensation", "say_on_pay", SOP),
    mgmt("Advisory Vote on Executive Compensation", "say_on_pay", SOP),
    mgmt(
        "To approve, on an advisory basis, the compensation of our named executive officers",
        "say_on_pay",
        SOP,
    ),
    mgmt(
        "Advisory resolution to approve the compensation of the Company's named executive officers",
        "say_on_pay",
        SOP,
    ),
    mgmt("Approve Compensation of Named Executive Officers", "say_on_pay", SOP),
    mgmt("Say on Pay - An Advisory Vote on the Approval of Executive Compensation", "say_on_pay", SOP),
    mgmt("Non-binding advisory vote on named executive officer compensation", "say_on_pay", SOP),
    mgmt("Approve Remuneration Report", "say_on_pay", SOP),
    mgmt("Approve Remuneration Policy", "say_on_pay", SOP),
    mgmt("Advisory Vote on Golden Parachutes", "golden_parachutes", SOP, DEAL),
    mgmt(
        "Advisory vote to approve compensation that may be paid or become payable to the named "
        "executive officers in connection with the merger",
        "golden_parachutes",
        SOP,
        DEAL,
    ),
]

SAY_ON_PAY_FREQUENCY = [
    mgmt("Advisory Vote on Say on Pay Frequency", "say_on_pay_frequency", SOP),
    mgmt(
        "Advisory Vote on the Frequency of Future Advisory Votes on Executive Compensation",
        "say_on_pay_frequency",
        SOP,
    ),
    mgmt("Frequency of Advisory Vote on Executive Compensation", "say_on_pay_frequency", SOP),
    mgmt(
        "To recommend, by non-binding vote, the frequency of executive compensation votes",
        "say_on_pay_frequency",
        SOP,
    ),
    mgmt("Advisory Vote on Frequency of Say-on-Pay Votes", "say_on_pay_frequency", SOP),
    mgmt(
        "Advisory vote on how frequently shareholders should vote on executive compensation",
        "say_on_pay_frequency",
        SOP,
    ),
]

PLANS_AND_PAY = [
    mgmt("Amend Omnibus Stock Plan", "equity_plan", COMP),
    mgmt("Approve Omnibus Stock Plan", "equity_plan", COMP),
    mgmt("Approve Qualified Employee Stock Purchase Plan", "equity_plan", COMP),
    mgmt("Amend Qualified Employee Stock Purchase Plan", "equity_plan", COMP),
    mgmt("Approve Non-Employee Director Omnibus Stock Plan", "equity_plan", COMP),
    mgmt("Approve Executive Incentive Bonus Plan", "equity_plan", COMP),
    mgmt("Approval of the Amended and Restated 2019 Equity Incentive Plan", "equity_plan", COMP),
    mgmt("Approve the 2024 Long-Term Incentive Plan", "equity_plan", COMP),
    mgmt("Approve Restricted Stock Plan", "equity_plan", COMP),
    mgmt("Approve Employee Share Purchase Plan", "equity_plan", COMP),
    mgmt("Approve Stock Option Exchange Program", "equity_plan", COMP),
    mgmt("Approve Remuneration of Directors", "director_compensation", COMP),
    mgmt("Approve Remuneration of Non-Executive Directors", "director_compensation", COMP),
]

TRANSACTIONS_AND_CAPITAL = [
    mgmt("Approve Merger Agreement", "merger_or_acquisition", DEAL),
    mgmt("Approve Acquisition of Activision Blizzard, Inc.", "merger_or_acquisition", DEAL),
    mgmt("Issue Shares in Connection with Merger", "merger_or_acquisition", DEAL, CAP),
    mgmt("Approve Scheme of Arrangement", "merger_or_acquisition", DEAL),
    mgmt("Approve Sale of Substantially All of the Company's Assets", "merger_or_acquisition", DEAL),
    mgmt("Adjourn Meeting", "merger_or_acquisition", DEAL),
    mgmt(
        "Approve the adjournment of the special meeting, if necessary, to solicit additional proxies",
        "merger_or_acquisition",
        DEAL,
    ),
    mgmt("Increase Authorized Common Stock", "capital_structure", CAP),
    mgmt("Approve Increase in Authorized Shares", "capital_structure", CAP),
    mgmt("Approve Reverse Stock Split", "capital_structure", CAP),
    mgmt("Authorize Share Repurchase Program", "capital_structure", CAP),
    mgmt("Authorise Market Purchase of Ordinary Shares", "capital_structure", CAP),
    mgmt("Authorize Issue of Equity with Pre-emptive Rights", "capital_structure", CAP),
    mgmt("Authorise Issue of Equity without Pre-emptive Rights", "capital_structure", CAP),
    mgmt("Approve Final Dividend", "capital_structure", CAP),
    mgmt("Approve Allocation of Income and Dividends of EUR 2.10 per Share", "capital_structure", CAP),
    mgmt("Authorize New Class of Preferred Stock", "capital_structure", CAP),
    mgmt("Approve Treatment of Net Loss", "capital_structure", CAP),
    mgmt("Approve Conversion of Securities", "capital_structure", CAP),
    sh("Approve Recapitalization Plan for all Stock to Have One-vote per Share", "capital_structure", CAP),
]

GOVERNANCE = [
    sh("Require Independent Board Chair", "independent_chair", GOV),
    sh("Require Independent Board Chairman", "independent_chair", GOV),
    sh("Adopt Policy to Require Independent Chairman", "independent_chair", GOV, request="policy"),
    sh("Separate Chairman and CEO Positions", "independent_chair", GOV),
    sh("Shareholder proposal regarding an independent board chair", "independent_chair", GOV),
    sh(
        "Stockholder proposal requesting that the Chair of the Board be an independent director",
        "independent_chair",
        GOV,
    ),
    sh("Provide Right to Call Special Meeting", "special_meeting_threshold", *RIGHTS_GOV),
    sh(
        "Reduce Ownership Threshold for Shareholders to Call Special Meeting",
        "special_meeting_threshold",
        *RIGHTS_GOV,
    ),
    sh(
        "Amend Bylaws to Allow Shareholders Holding 10% to Call Special Meetings",
        "special_meeting_threshold",
        *RIGHTS_GOV,
        GOV,
    ),
    mgmt(
        "Authorise the Company to Call General Meeting with Two Weeks' Notice",
        "general_meeting_notice",
        *RIGHTS_GOV,
    ),
    sh("Provide Right to Act by Written Consent", "written_consent", *RIGHTS_GOV),
    sh("Adopt Shareholder Right to Act by Written Consent", "written_consent", *RIGHTS_GOV),
    sh("Declassify the Board of Directors", "declassify_board", *RIGHTS_GOV),
    mgmt("Provide for the Annual Election of Directors", "declassify_board", *RIGHTS_GOV),
    sh("Require a Majority Vote for the Election of Directors", "majority_voting", *RIGHTS_GOV),
    sh("Adopt Simple Majority Vote", "majority_voting", *RIGHTS_GOV),
    mgmt("Eliminate Supermajority Vote Requirement", "majority_voting", *RIGHTS_GOV),
    sh("Restore or Provide for Cumulative Voting", "majority_voting", *RIGHTS_GOV),
    sh("Adopt Proxy Access Right", "proxy_access", *RIGHTS_GOV),
    sh("Amend Proxy Access Right", "proxy_access", *RIGHTS_GOV),
    sh("Submit Shareholder Rights Plan (Poison Pill) to Shareholder Vote", "poison_pill", *RIGHTS_GOV),
    mgmt(
        "Amend Certificate of Incorporation to Provide for Exculpation of Officers",
        "bylaw_or_charter_amendment",
        GOV,
    ),
    mgmt("Adopt Exclusive Forum Provision", "bylaw_or_charter_amendment", GOV),
    mgmt("Change Company Name to Meta Platforms, Inc.", "bylaw_or_charter_amendment", GOV),
    mgmt("Approve Discharge of Board and President", "discharge", GOV),
    sh("Adopt Director Term Limits", "board_governance", GOV),
    sh("Establish a Board Committee on Public Policy", "board_governance", GOV),
]

INFLUENCE_AND_TAX = [
    sh("Report on Lobbying Payments and Policy", "lobbying_disclosure", GOV, SOC, request="report"),
    sh(
        "Shareholder proposal requesting additional reporting on lobbying",
        "lobbying_disclosure",
        GOV,
        SOC,
        request="report",
    ),
    sh("Report on Direct and Indirect Lobbying Expenditures", "lobbying_disclosure", GOV, SOC),
    sh(
        "Report on Climate Lobbying",
        "lobbying_disclosure",
        GOV,
        SOC,
        ENV,
        request="report",
        also=("climate_report",),
    ),
    sh(
        "Report on Lobbying Activities Alignment with the Paris Agreement",
        "lobbying_disclosure",
        GOV,
        SOC,
        ENV,
    ),
    sh(
        "Report on Political Contributions and Expenditures", "political_spending", GOV, SOC, request="report"
    ),
    sh("Report on Electioneering Expenditures", "political_spending", GOV, SOC),
    sh(
        "Report on Congruency of Political Spending with Company Values and Priorities",
        "political_spending",
        GOV,
        SOC,
    ),
    mgmt("Authorise UK Political Donations and Expenditure", "political_spending", GOV, SOC),
    sh("Report on Tax Transparency", "tax_transparency", SOC, request="report"),
    sh("Report on Public Country-by-Country Tax Reporting", "tax_transparency", SOC),
    sh("Report Public Tax Disclosures Aligned with the GRI Tax Standard", "tax_transparency", SOC),
]

SHAREHOLDER_PAY = [
    sh(
        "Adopt a Policy to Strengthen Clawback Provisions",
        "executive_compensation_policy",
        COMP,
        request="policy",
    ),
    sh(
        "Require Shareholder Approval of Certain Future Severance Agreements",
        "executive_compensation_policy",
        COMP,
    ),
    sh(
        "Limit Accelerated Vesting of Equity Awards Upon a Change in Control",
        "executive_compensation_policy",
        COMP,
    ),
    sh(
        "Adopt Policy to Require Senior Executives to Retain Significant Portion of Stock",
        "executive_compensation_policy",
        COMP,
    ),
    sh(
        "Report on Integrating ESG Metrics Into Executive Compensation Program",
        "executive_compensation_policy",
        COMP,
    ),
    sh(
        "Consider Pay Disparity Between Executives and Other Employees", "executive_compensation_policy", COMP
    ),
    sh(
        "Report on Link Between Executive Pay and GHG Emissions Reduction Targets",
        "executive_compensation_policy",
        COMP,
        ENV,
        also=("emissions_targets",),
    ),
]

# --- Shareholder proposals on human and digital rights ----------------------

HUMAN_RIGHTS = [
    sh("Report on Human Rights Due Diligence", "human_rights_due_diligence", HR, request="due_diligence"),
    sh(
        "Adopt and Disclose a Human Rights Due Diligence Process",
        "human_rights_due_diligence",
        HR,
        request="due_diligence",
    ),
    sh("Report on Human Rights Policy Implementation", "human_rights_due_diligence", HR),
    sh("Report on Respecting Indigenous Peoples' Rights", "human_rights_due_diligence", HR, request="report"),
    sh(
        "Conduct and Publish Human Rights Impact Assessment",
        "human_rights_impact_assessment",
        HR,
        request=DISCLOSURE,
    ),
    # The technology is the primary topic; the assessment is kept among the topics.
    sh(
        "Report on Human Rights Impact Assessment of Targeted Advertising",
        "privacy",
        HR,
        request=DISCLOSURE,
        also=("human_rights_impact_assessment",),
    ),
    sh(
        "Report on Human Rights Risk Assessment Process",
        "human_rights_impact_assessment",
        HR,
        request=DISCLOSURE,
    ),
    sh(
        "Report on Risks of Doing Business in Countries with Significant Human Rights Concerns",
        "human_rights_impact_assessment",
        HR,
        request="report",
    ),
    sh(
        "Assess and Report on Human Rights Risks in Conflict-Affected and High-Risk Areas",
        "human_rights_impact_assessment",
        HR,
        request=DISCLOSURE,
    ),
    sh(
        "Report on Siting of Data Centers in Countries of Significant Human Rights Concern",
        "human_rights_impact_assessment",
        HR,
        request="report",
    ),
    sh("Report on Customer Due Diligence", "customer_due_diligence", HR, request="due_diligence"),
    sh(
        "Report on Due Diligence Process to Assess Human Rights Risks of Customers' Use of Products",
        "customer_due_diligence",
        HR,
        request="due_diligence",
    ),
    sh(
        "Report on Efforts to Prevent Misuse of Cloud Services by Customers",
        "customer_due_diligence",
        HR,
        request="report",
    ),
    sh(
        "Report on Risks of Sales of Facial Recognition Technology to Government Agencies",
        "facial_recognition",
        HR,
        request="report",
        also=("government_surveillance",),
    ),
    sh(
        "Commission Independent Study on Facial Recognition Technology and Its Impact on Civil Rights",
        "facial_recognition",
        HR,
        request="study",
    ),
    sh(
        "Prohibit Sales of Facial Recognition Technology to Government Agencies",
        "facial_recognition",
        HR,
        request="prohibit",
        flags=("prescriptive",),
    ),
    sh(
        "Adopt a Moratorium on Sales of Biometric Surveillance Technology",
        "facial_recognition",
        HR,
        request="prohibit",
        flags=("prescriptive",),
    ),
    sh("Report on Government Use of Company Technology", "government_surveillance", HR, request="report"),
    sh(
        "Report on Risks of Providing Surveillance Technology to Law Enforcement",
        "government_surveillance",
        HR,
        request="report",
    ),
    sh("Report on Contracts with Immigration Enforcement Agencies", "government_surveillance", HR),
    sh("Report on Risks of Operating in China", "human_rights_impact_assessment", HR, request="report"),
    sh("Report on Risks to Users From Encrypted Messaging", "privacy", HR, request="report"),
    sh(
        "Shareholder proposal requesting a report on the company's use of artificial intelligence",
        "ai_governance",
        HR,
        request="report",
    ),
    sh(
        "Shareholder Proposal Regarding Human Rights Impact Assessment",
        "human_rights_impact_assessment",
        HR,
        request="assessment",
    ),
    sh("Report on Community Impacts of Supply Chain Practices", "supply_chain_labor", HR),
    sh("Report on Risks of Using Artificial Intelligence", "ai_governance", HR, request="report"),
    sh(
        "Report on AI Misinformation and Disinformation",
        "ai_governance",
        HR,
        request="report",
        also=("content_governance",),
    ),
    sh(
        "Report on Risks Related to AI Generated Misinformation and Disinformation",
        "ai_governance",
        HR,
        also=("content_governance",),
    ),
    sh("Report on AI Data Sourcing Accountability", "ai_governance", HR, request="report"),
    sh("Report on Algorithm Disclosures", "ai_governance", HR, request="report"),
    sh(
        "Commission Third-Party Human Rights Impact Assessment of Generative AI",
        "ai_governance",
        HR,
        request=DISCLOSURE,
        also=("human_rights_impact_assessment",),
    ),
    sh("Adopt a Policy on Ethical Use of Artificial Intelligence", "ai_governance", HR, request="policy"),
    sh(
        "Report on Efforts to Address Hate Speech on the Platform", "content_governance", HR, request="report"
    ),
    sh(
        "Report on Child Safety Impacts and Actual Harm Reduction to Children",
        "content_governance",
        HR,
        request="report",
    ),
    sh("Report on Efforts to Prevent Online Child Sexual Exploitation", "content_governance", HR),
    sh("Report on Enforcement of Community Standards and User Content", "content_governance", HR),
    sh("Report on Government Takedown Requests", "content_governance", HR, request="report"),
    sh("Report on Alignment of YouTube Policies With Online Safety Regulations", "content_governance", HR),
    sh("Report on Data Privacy", "privacy", HR, request="report"),
    sh(
        "Report on Risks Related to Fulfilling Information Requests for Enforcing Laws Criminalizing "
        "Abortion Access",
        "privacy",
        HR,
        SOC,
        request="report",
        also=("reproductive_health",),
    ),
    sh("Adopt Targets to Minimize Collection of Consumer Personal Data", "privacy", HR, request="target"),
    sh(
        "Commission Third Party Assessment on Company's Commitment to Freedom of Association and "
        "Collective Bargaining",
        "freedom_of_association",
        HR,
        request="assessment",
    ),
    sh(
        "Adopt a Policy on Respecting Rights to Freedom of Association",
        "freedom_of_association",
        HR,
        request="policy",
    ),
    sh("Report on Company's Approach to Union Organizing", "freedom_of_association", HR),
    sh(
        "Report on Efforts to Eliminate Forced Labor in the Supply Chain",
        "supply_chain_labor",
        HR,
        request="report",
    ),
    sh("Report on Eradicating Child Labor in Battery Supply Chain", "supply_chain_labor", HR),
    sh("Report on Supply Chain Exposure to Uyghur Forced Labor", "supply_chain_labor", HR),
    sh(
        "Publish Report on Human Rights in the Supply Chain",
        "supply_chain_labor",
        HR,
        request="report",
        also=("human_rights_due_diligence",),
    ),
    sh("Report on Worker Health and Safety", "worker_safety", HR, request="report"),
    sh(
        "Commission an Independent Audit of Workplace Health and Safety Practices",
        "worker_safety",
        HR,
        request="audit",
    ),
    sh("Report on Warehouse Working Conditions", "worker_safety", HR, request="report"),
    sh("Report on Efforts to Reduce Injury Rates in Fulfillment Centers", "worker_safety", HR),
    sh("Report on Paid Sick Leave", "human_capital", HR, request="report"),
    sh("Report on Risks Associated with Use of Concealment Clauses", "human_capital", HR),
    sh("Report on Human Capital Management Metrics", "human_capital", HR, request="report"),
    sh(
        "Adopt Policy to Include Non-Management Employees as Prospective Director Candidates",
        "human_capital",
        HR,
    ),
]

DIVERSITY = [
    sh("Report on Median Gender/Racial Pay Gap", "pay_gap", DEI, request="report"),
    sh("Report on Gender Pay Gap", "pay_gap", DEI, request="report"),
    sh("Report on Racial and Gender Pay Gaps", "pay_gap", DEI),
    sh("Report on Pay Equity", "pay_gap", DEI),
    sh("Conduct a Racial Equity Audit", "racial_equity_audit", DEI, request="audit"),
    sh("Oversee and Report a Racial Equity Audit", "racial_equity_audit", DEI, request="audit"),
    sh("Commission a Civil Rights Audit", "racial_equity_audit", DEI, request="audit"),
    sh("Shareholder Proposal Regarding Racial Equity Audit", "racial_equity_audit", DEI, request="audit"),
    sh("Report on Board Diversity", "board_diversity", DEI, DIR, request="report"),
    sh("Adopt Policy on Board Diversity", "board_diversity", DEI, DIR, request="policy"),
    sh("Require Diverse Board Candidate Pools", "board_diversity", DEI, DIR),
    sh(
        "Adopt a Policy to Include Women and Minority Candidates in Director Searches",
        "board_diversity",
        DEI,
        DIR,
    ),
    sh("Report on Diversity and Inclusion Efforts", "diversity_inclusion", DEI, request="report"),
    sh(
        "Report on Effectiveness of Diversity, Equity, and Inclusion Efforts",
        "diversity_inclusion",
        DEI,
        request=("report", "assessment"),
    ),
    sh("Disclose EEO-1 Data", "diversity_inclusion", DEI, request="report"),
    sh(
        "Report on Workforce Diversity",
        "diversity_inclusion",
        DEI,
        HR,
        request="report",
        also=("human_capital",),
    ),
    sh(
        "Report on Efforts to Prevent Harassment and Discrimination in the Workplace",
        "diversity_inclusion",
        DEI,
        request="report",
    ),
    sh("Add Sexual Orientation and Gender Identity to EEO Policy", "diversity_inclusion", DEI),
    sh(
        "Report on Whether Company Policies Reinforce Racism in Company Culture",
        "diversity_inclusion",
        DEI,
        request="report",
    ),
    sh("Report on Gender-Based Violence and Harassment", "diversity_inclusion", DEI),
    sh(
        "Stockholder proposal regarding a report on gender-based compensation gaps",
        "pay_gap",
        DEI,
        request="report",
    ),
]

ENVIRONMENT = [
    sh("Report on Climate Change", "climate_report", ENV, request="report"),
    sh("Report on Climate Transition Plan", "climate_report", ENV, request="report"),
    sh("Report on Physical Risks of Climate Change", "climate_report", ENV, request="report"),
    sh(
        "Report on Impact of Climate Change Strategy Consistent With Just Transition Guidelines",
        "climate_report",
        ENV,
    ),
    sh(
        "Adopt Time-Bound Policy to Phase Out Underwriting and Lending for New Fossil Fuel Development",
        "climate_report",
        ENV,
        request=("policy", "prohibit"),
        flags=("prescriptive",),
    ),
    sh("Report on Energy Supply Ratio", "climate_report", ENV),
    mgmt("Approve the Company's Climate Transition Action Plan (Say on Climate)", "climate_report", ENV),
    sh("Adopt GHG Emissions Reduction Targets", "emissions_targets", ENV, request="target"),
    sh(
        "Adopt Science-Based GHG Emissions Reduction Targets Aligned with the Paris Agreement",
        "emissions_targets",
        ENV,
        request="target",
    ),
    sh("Report on Scope 3 Greenhouse Gas Emissions", "emissions_targets", ENV, request="report"),
    sh("Disclose All Material Scope 3 Emissions", "emissions_targets", ENV, request="report"),
    sh("Report on Plans to Achieve Net Zero by 2050", "emissions_targets", ENV, request="report"),
    sh(
        "Report on Absolute Targets for Financed GHG Emissions in Line with Net Zero Commitments",
        "emissions_targets",
        ENV,
        request="report",
    ),
    sh(
        "Disclose 2030 Absolute Greenhouse Gas Reduction Targets Associated with Lending and Underwriting",
        "emissions_targets",
        ENV,
        request="report",
    ),
    sh("Issue Report on Methane Emissions Reduction", "emissions_targets", ENV, request="report"),
    sh("Report on Efforts to Reduce Plastic Use", "plastics", ENV, request="report"),
    sh("Report on Plastic Packaging", "plastics", ENV),
    sh("Report on Recyclability of Packaging", "plastics", ENV),
    sh("Report on Food Waste Management", "food_waste", ENV, request="report"),
    sh(
        "Shareholder proposal requesting a report on the effects of food loss and waste",
        "food_waste",
        ENV,
        request="report",
    ),
    sh(
        "Report on Efforts to Eliminate Deforestation in Supply Chain", "deforestation", ENV, request="report"
    ),
    sh("Report on Deforestation Risks in Cattle Supply Chain", "deforestation", ENV),
    sh("Report on Commitment to Zero Deforestation", "deforestation", ENV),
    sh("Report on Biodiversity Impacts", "environmental_impact", ENV, request="report"),
    sh("Report on Water Risk Exposure", "environmental_impact", ENV),
    sh("Report on Use of Toxic Chemicals in Products", "environmental_impact", ENV),
    sh("Report on Sustainability Metrics", "environmental_impact", ENV),
]

OTHER_SOCIAL = [
    sh("Report on Antibiotics and Public Health Costs", "public_health", SOC, request="report"),
    sh("Report on Risks of Reproductive Healthcare Legislation", "reproductive_health", SOC),
    sh("Report on Animal Welfare Standards", "animal_welfare", SOC, request="report"),
    sh("Report on Efforts to Eliminate Gestation Crates", "animal_welfare", SOC),
    # Charitable-giving reports come from the anti-ESG side nowadays; ESG specialists oppose them.
    sh("Report on Charitable Contributions", "charitable_giving", SOC, request="report", flags=("anti_esg",)),
    mgmt("Approve Investment Advisory Agreement", "investment_company_matters", FUND),
    mgmt("Approve Change of Fundamental Investment Policy", "investment_company_matters", FUND),
]

# Counter-proposals that ask a company to drop or second-guess ESG
# commitments, typically filed by the National Center for Public Policy
# Research, the National Legal and Policy Center or Bowyer Research.
ANTI_ESG = [
    sh(
        "Report on Risks of Omitting Viewpoint and Ideology from EEO Policy",
        "diversity_inclusion",
        DEI,
        request="report",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Costs of Net Zero Commitments",
        "emissions_targets",
        ENV,
        request="report",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Risks of Racial Equity Audit",
        "racial_equity_audit",
        DEI,
        request="report",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Risks Created by the Company's Diversity, Equity and Inclusion Efforts",
        "diversity_inclusion",
        DEI,
        request="report",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Civil Rights and Non-Discrimination Audit", "racial_equity_audit", DEI, flags=("anti_esg",)
    ),
    sh(
        "Abolish DEI Policies and Programs",
        "diversity_inclusion",
        DEI,
        request="abandon",
        flags=("anti_esg",),
    ),
    sh(
        "Withdraw from the Net Zero Banking Alliance",
        "emissions_targets",
        ENV,
        request="abandon",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Risks of Politicized De-Banking",
        "viewpoint_and_civil_liberties",
        SOC,
        request="report",
        flags=("anti_esg",),
    ),
    sh(
        "Report on Respecting Workforce Civil Liberties",
        "human_capital",
        HR,
        SOC,
        request="report",
        flags=("anti_esg",),
        also=("viewpoint_and_civil_liberties",),
    ),
]

REFERENCE_TABLE = (
    DIRECTOR_ELECTIONS
    + AUDITORS
    + SAY_ON_PAY
    + SAY_ON_PAY_FREQUENCY
    + PLANS_AND_PAY
    + TRANSACTIONS_AND_CAPITAL
    + GOVERNANCE
    + INFLUENCE_AND_TAX
    + SHAREHOLDER_PAY
    + HUMAN_RIGHTS
    + DIVERSITY
    + ENVIRONMENT
    + OTHER_SOCIAL
    + ANTI_ESG
)


def _row_id(row: Expect) -> str:
    return f"{row.proponent[:2]}:{row.title[:70]}"


@pytest.mark.parametrize("row", REFERENCE_TABLE, ids=_row_id)
def test_reference_titles_classify_as_expected(taxonomy, row: Expect):
    c = classify(item(row.title, row.proponent), taxonomy)

    assert c.source == "TAXONOMY"
    assert c.topic == row.topic, c.matches
    assert set(c.npx_categories) == set(row.categories), c.matches
    assert set(row.also) <= set(c.topics), c.topics
    if row.request is not None:
        allowed = (row.request,) if isinstance(row.request, str) else row.request
        assert c.request_kind in allowed, c.matches
    # The direction of a shareholder-rights change has its own tests below.
    assert set(c.flags) - RIGHTS_DIRECTION == set(row.flags), c.matches


RIGHTS_DIRECTION = {"extends_shareholder_rights", "restricts_shareholder_rights", "equal_voting_rights"}


@pytest.mark.parametrize(
    "title, kind, flags",
    [
        (
            "Amend Charter to Lower the Special Meeting Ownership Threshold to 15%",
            MGMT,
            {"extends_shareholder_rights"},
        ),
        ("Eliminate Supermajority Voting Requirements in the Bylaws", MGMT, {"extends_shareholder_rights"}),
        (
            "Amend Bylaws to Permit Shareholders to Act by Written Consent",
            MGMT,
            {"extends_shareholder_rights"},
        ),
        (
            "Approve Increase in the Ownership Threshold Required to Call a Special Meeting",
            MGMT,
            {"restricts_shareholder_rights"},
        ),
        (
            "Adopt Shareholder Rights Plan",
            MGMT,
            {"extends_shareholder_rights", "restricts_shareholder_rights"},
        ),
        (
            "Approve Recapitalization Plan for All Stock to Have One Vote per Share",
            SH,
            {"equal_voting_rights"},
        ),
        ("Eliminate the Dual-Class Share Structure", SH, {"equal_voting_rights"}),
    ],
)
def test_the_direction_of_a_shareholder_rights_change_is_flagged(taxonomy, title, kind, flags):
    assert set(classify(item(title, kind), taxonomy).flags) & RIGHTS_DIRECTION == flags


def test_rights_direction_flags_stay_off_items_outside_shareholder_rights(taxonomy):
    for title in ("Report on Efforts to Reduce Plastic Use", "Adopt GHG Emissions Reduction Targets"):
        assert not set(classify(item(title, SH), taxonomy).flags) & RIGHTS_DIRECTION


def test_reference_table_is_large_and_has_no_duplicates():
    titles = [(row.title, row.proponent) for row in REFERENCE_TABLE]
    assert len(titles) >= 150
    assert len(set(titles)) == len(titles)


# --- Pro-ESG proposals are never mistaken for anti-ESG counter-proposals ------


@pytest.mark.parametrize(
    "title",
    [
        "Report on Efforts to End Discrimination and Promote Diversity and Inclusion Programs",
        "Report on Risks of Failing to Meet Climate Targets",
        "Adopt Policy to Cease Financing New Fossil Fuel Supplies Consistent with Climate Goals",
        "Report on Effectiveness of Diversity, Equity and Inclusion Programs",
        "Eliminate Gender and Racial Pay Gaps",
        "Report on Progress Toward Net Zero Commitments",
    ],
)
def test_pro_esg_proposals_are_not_flagged_anti_esg(taxonomy, title):
    assert "anti_esg" not in classify(item(title), taxonomy).flags


def test_a_known_anti_esg_proponent_is_flagged_by_name(taxonomy):
    c = classify(
        item("Report on Charitable Giving", proponent_name="National Center for Public Policy Research"),
        taxonomy,
    )

    assert "anti_esg" in c.flags
    flag = next(m for m in c.matches if m.rule_id == "anti_esg")
    assert flag.field == "proponent.name"


def test_supporting_statement_wording_does_not_make_a_request_prescriptive(taxonomy):
    text = (
        "RESOLVED: Shareholders request that the Board publish a report assessing the company's human "
        "rights due diligence. SUPPORTING STATEMENT: Companies must respect human rights and must "
        "know and show that they do."
    )
    c = classify(item("Shareholder Proposal", text=text), taxonomy)

    assert c.topic == "human_rights_due_diligence"
    assert "prescriptive" not in c.flags


# --- Who proposed it matters --------------------------------------------------


def test_say_on_pay_is_a_management_item_only(taxonomy):
    say_on_pay = "Advisory Vote to Ratify Named Executive Officers' Compensation"
    management = classify(item(say_on_pay, MGMT), taxonomy)
    shareholder = classify(item("Report on Executive Compensation", SH), taxonomy)

    assert management.topic == "say_on_pay"
    assert shareholder.topic == "executive_compensation_policy"
    assert "say_on_pay" not in shareholder.topics
    assert shareholder.npx_categories == (COMP,)


def test_board_diversity_is_a_shareholder_topic_and_management_diversity_items_are_general(taxonomy):
    shareholder = classify(item("Report on Board Diversity", SH), taxonomy)
    management = classify(item("Report on Board Diversity", MGMT), taxonomy)

    assert shareholder.topic == "board_diversity"
    assert management.topic == "diversity_inclusion"
    assert "board_diversity" not in management.topics


def test_equity_plans_and_mergers_are_management_items(taxonomy):
    plan = classify(item("Amend Omnibus Stock Plan", SH), taxonomy)
    merger = classify(item("Approve Merger Agreement", SH), taxonomy)

    assert "equity_plan" not in plan.topics
    assert "merger_or_acquisition" not in merger.topics


def test_shareholder_proposals_about_elections_are_not_director_elections(taxonomy):
    for title in (
        "Require a Majority Vote for the Election of Directors",
        "Shareholder Proposal to Elect Each Director Annually",
        "Report on Board Diversity in the Election of Directors",
    ):
        c = classify(item(title, SH), taxonomy)
        assert "director_election" not in c.topics, (title, c.topics)


def test_elect_chairman_of_meeting_is_a_formality_not_a_director_election(taxonomy):
    c = classify(item("Elect Chairman of Meeting", MGMT), taxonomy)

    assert c.topic == "meeting_procedure"
    assert c.npx_categories == (OTHER,)


# --- Items with nothing to place them ----------------------------------------


@pytest.mark.parametrize(
    "title, topic",
    [
        ("Transact Other Business", "other_business"),
        ("Other Business", "other_business"),
        ("Approve Minutes of Previous Meeting", "meeting_procedure"),
        ("Open Meeting", "meeting_procedure"),
        ("Close Meeting", "meeting_procedure"),
        ("Designate Inspector(s) of Minutes of Meeting", "meeting_procedure"),
        ("Acknowledge Proper Convening of Meeting", "meeting_procedure"),
        ("Approve Agenda of Meeting", "meeting_procedure"),
        ("Certification of Notice and Quorum", "meeting_procedure"),
    ],
)
def test_meeting_formalities_are_placed_under_other(taxonomy, title, topic):
    c = classify(item(title, MGMT), taxonomy)

    assert c.topic == topic
    assert c.npx_categories == (OTHER,)
    assert c.placed


@pytest.mark.parametrize("title", ["Shareholder Proposal", "Item 12", "Proposal No. 7", "Miscellaneous"])
def test_an_item_nothing_recognises_is_unplaced_under_other(taxonomy, title):
    c = classify(item(title), taxonomy)

    assert c.source == "UNPLACED"
    assert not c.placed
    assert c.npx_categories == (OTHER,)
    assert c.topic == ""
    assert c.topics == ()


# --- The text is read when the title says nothing ------------------------------


def test_resolution_text_places_an_item_whose_title_says_nothing(taxonomy):
    text = (
        "RESOLVED: Shareholders request that the Board of Directors commission an independent "
        "assessment of the human rights impacts of the Company's facial recognition products sold to "
        "law enforcement agencies, and report the findings to shareholders."
    )
    c = classify(item("Shareholder Proposal", text=text), taxonomy)

    assert c.source == "TAXONOMY"
    assert c.topic == "facial_recognition"
    assert c.npx_categories == (HR,)
    assert c.request_kind in DISCLOSURE
    assert {m.field for m in c.matches if m.kind == "topic"} == {"text"}


def test_the_title_wins_over_the_text(taxonomy):
    text = "RESOLVED: shareholders ask the board to report on its lobbying and climate commitments."
    c = classify(item("Report on Gender Pay Gap", text=text), taxonomy)

    assert c.topic == "pay_gap"
    assert c.topics == ("pay_gap",)
    assert {m.field for m in c.matches if m.kind == "topic"} == {"title"}


# --- Evidence of each classification ------------------------------------------


@pytest.mark.parametrize("row", REFERENCE_TABLE[::7], ids=_row_id)
def test_every_classification_reports_its_matches(taxonomy, row: Expect):
    c = classify(item(row.title, row.proponent), taxonomy)

    topic_matches = [m for m in c.matches if m.kind == "topic"]
    assert [m.rule_id for m in topic_matches] == list(c.topics)
    for m in c.matches:
        assert m.rule_id
        assert m.field in ("title", "text", "proponent.name")
        assert m.matched
        if m.field == "title":
            assert m.matched in row.title
    if c.request_kind:
        assert any(m.kind == "request_kind" and m.rule_id == c.request_kind for m in c.matches)
    assert c.taxonomy_hash


# --- The caller's category wins ---------------------------------------------------


def test_a_caller_supplied_category_wins_and_is_reported_as_caller(taxonomy):
    c = classify(
        item(
            "Report on Climate Lobbying",
            category=CallerCategory(npx_category=HR, topic="human_rights_due_diligence"),
        ),
        taxonomy,
    )

    assert c.source == "CALLER"
    assert c.npx_categories == (HR,)
    assert c.topic == "human_rights_due_diligence"
    assert c.topics[0] == "human_rights_due_diligence"
    assert "lobbying_disclosure" in c.topics
    assert c.matches[0].rule_id == "caller"


def test_a_caller_category_without_topic_keeps_the_taxonomy_topic(taxonomy):
    c = classify(item("Transact Other Business", MGMT, category=CallerCategory(npx_category=GOV)), taxonomy)

    assert c.source == "CALLER"
    assert c.npx_categories == (GOV,)
    assert c.topic == "other_business"


# --- The demo meetings ------------------------------------------------------------


def _meeting(name: str):
    text = (ROOT / "examples" / "meetings" / name).read_text()
    return meeting_from_json(text)


def _by_item(name: str, taxonomy):
    meeting = _meeting(name)
    return {i.item_id: c for i, c in zip(meeting.items, classify_meeting(meeting, taxonomy), strict=True)}


def test_amazon_2020_technology_proposals_keep_their_classification(taxonomy):
    c = _by_item("amazon-2020-agm.json", taxonomy)

    assert c["6"].topic == "customer_due_diligence"
    assert c["6"].npx_categories == (HR,)
    assert c["6"].request_kind in ("due_diligence", "report")
    assert c["7"].topic == "facial_recognition"
    assert c["7"].npx_categories == (HR,)
    assert c["7"].request_kind == "report"
    assert c["15"].topic == "human_rights_impact_assessment"


def test_amazon_2019_ban_and_study_are_told_apart(taxonomy):
    c = _by_item("amazon-2019-agm.json", taxonomy)

    assert c["6"].request_kind == "prohibit"
    assert c["7"].request_kind == "study"
    assert c["6"].topic == c["7"].topic == "facial_recognition"


def test_every_demo_item_is_placed(taxonomy):
    for name in ("amazon-2019-agm.json", "amazon-2020-agm.json", "amazon-2021-agm.json"):
        for c in _by_item(name, taxonomy).values():
            assert c.placed


# --- Long inputs are scanned quickly ----------------------------------------------


def test_long_titles_and_texts_are_classified_whole(taxonomy):
    """Long inputs are classified (their speed is a benchmark figure: bench/run.py, long inputs)."""
    words = "the board of directors shall report on the risks of human capital and audit " * 60
    long_title = ("Shareholder proposal regarding " + words)[:4000]
    long_text = ("RESOLVED " + "a " * 3000 + words * 4 + " -" * 2000)[:20000]
    for title, text in ((long_title, long_text), ("x" * 4000, "y" * 20000), ("a " * 2000, ". " * 10000)):
        for kind in (SH, MGMT):
            c = classify(item(title, kind, text=text), taxonomy)
            assert c.npx_categories and c.taxonomy_hash == taxonomy.content_hash


# --- The taxonomy document is validated --------------------------------------------

GOOD_TOPIC = """\
version: 1
topics:
  - id: privacy
    categories: [HUMAN_RIGHTS_OR_HUMAN_CAPITAL]
    patterns: ['\\bprivacy\\b']
"""


def _problem_lines(text: str) -> list[int]:
    with pytest.raises(PolicyInvalid) as raised:
        parse_taxonomy(text)
    return [p.line for p in raised.value.problems]


def test_a_minimal_taxonomy_parses():
    assert parse_taxonomy(GOOD_TOPIC).topic_ids == frozenset({"privacy"})


def test_an_unknown_category_is_rejected_with_its_line():
    text = GOOD_TOPIC.replace("[HUMAN_RIGHTS_OR_HUMAN_CAPITAL]", "[HUMAN_RIGHTS]")

    assert _problem_lines(text) == [4]


def test_a_bad_regex_is_rejected_with_its_line():
    text = (
        GOOD_TOPIC
        + """\
  - id: broken
    categories: [OTHER]
    patterns:
      - '(unclosed'
"""
    )
    lines = _problem_lines(text)

    assert lines == [9]


def test_a_duplicate_id_is_rejected_with_its_line():
    text = (
        GOOD_TOPIC
        + """\
  - id: privacy
    categories: [OTHER]
    patterns: ['data']
"""
    )
    lines = _problem_lines(text)

    assert lines == [6]


def test_the_bundled_taxonomy_keeps_every_id_the_policies_use(taxonomy):
    import yaml

    used_topics, used_kinds, used_flags = set(), set(), set()
    for path in (ROOT / "policies").glob("*.yaml"):
        if path.name == "taxonomy.yaml":
            continue
        for rule in (yaml.safe_load(path.read_text()) or {}).get("rules", []):
            when = rule.get("when") or {}
            used_topics |= set(when.get("topics", []))
            used_kinds |= set(when.get("request_kinds", []))
            used_flags |= set(when.get("flags", [])) | set(when.get("not_flags", []))

    assert used_topics <= taxonomy.topic_ids
    assert used_kinds <= taxonomy.request_kind_ids
    assert used_flags <= taxonomy.flag_ids
