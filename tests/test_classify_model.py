"""The classifier's parts from issue 8: prefilter, linear model, confidences, review, evaluation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from proxyvote.core.classify import classify
from proxyvote.core.classify_eval import Evaluation, category_code, fold_of, issuer_key
from proxyvote.core.classify_reference import reference_classify
from proxyvote.core.model import BallotItem
from proxyvote.core.prefilter import CASE_FOLDS_TO_ASCII, pattern_needs
from proxyvote.core.taxonomy import parse_taxonomy
from proxyvote.core.textmodel import dump_model, features, parse_model

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY_TEXT = (ROOT / "policies" / "taxonomy.yaml").read_text()

# A toy model written by hand: "wombat" points to AUDIT_RELATED, "quokka" to
# the anti-ESG direction. Nothing here is learnt from the data sets.
TOY = dump_model(
    ["AUDIT_RELATED", "OTHER_SOCIAL_ISSUES", "ANTI_ESG"],
    [-3.0, -3.0, -3.0],
    {"w:wombat": [40.0, 0.0, 0.0], "w:quokka": [0.0, 40.0, 40.0]},
    {"toy": True},
)


def item(title, kind="SHAREHOLDER"):
    return BallotItem("1", title, kind)


def test_model_round_trips_and_its_hash_enters_the_taxonomy_hash():
    model = parse_model(TOY)
    assert model.labels == ("AUDIT_RELATED", "OTHER_SOCIAL_ISSUES", "ANTI_ESG")
    rules_only = parse_taxonomy(TAXONOMY_TEXT)
    with_model = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    other = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY.replace("40.0", "41.0", 1))
    assert with_model.model_hash == model.content_hash
    assert len({rules_only.content_hash, with_model.content_hash, other.content_hash}) == 3
    c = classify(item("wombat"), with_model)
    assert c.taxonomy_hash == with_model.content_hash


def test_model_places_what_no_rule_does_with_a_confidence():
    tax = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    c = classify(item("wombat wombat"), tax)
    assert c.source == "TAXONOMY" and not c.topics
    assert c.npx_categories[0] == "AUDIT_RELATED"
    assert c.confidences[0][0] == "AUDIT_RELATED" and c.confidences[0][1] > 0.9
    assert not c.needs_review


def test_nothing_confident_needs_review_with_a_reason():
    tax = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    c = classify(item("zzzz yyyy"), tax)
    assert c.needs_review and not c.placed
    assert "no category is confident" in c.review_reason
    rules_only = classify(item("zzzz yyyy"), parse_taxonomy(TAXONOMY_TEXT))
    assert rules_only.needs_review and rules_only.npx_categories == ("OTHER",)


def test_model_direction_flags_only_placed_shareholder_items():
    tax = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    sh = classify(item("quokka quokka"), tax)
    assert "anti_esg" in sh.flags and sh.direction == "anti_esg" and sh.direction_score > 0.9
    mgmt = classify(item("quokka quokka", "MANAGEMENT"), tax)
    assert "anti_esg" not in mgmt.flags and mgmt.direction == ""


@pytest.mark.parametrize(
    "title",
    [
        "Ratify KPMG LLP as Auditors",
        "Elect Director Jane Doe",
        "Approve Remuneration Report",
        "Authorise Market Purchase of Ordinary Shares",
        "Report on Lobbying Payments and Policy",
        "Report on Risks of Net Zero Commitments",
    ],
)
def test_prefilter_never_changes_what_the_rules_find(title):
    # The reference tries every pattern (tests/test_classify_fast.py does this on every wording).
    fast = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    slow = parse_taxonomy(TAXONOMY_TEXT, model_text=TOY)
    for kind in ("MANAGEMENT", "SHAREHOLDER"):
        assert classify(item(title, kind), fast) == reference_classify(item(title, kind), slow)


def test_the_prefilter_reads_word_anchors_from_the_patterns():
    needs = pattern_needs(re.compile(r"\bai[- ](driven|powered)\b|\bratif\w+", re.IGNORECASE))
    assert set(needs) == {
        frozenset({("eq", "ai"), ("eq", "driven")}),
        frozenset({("eq", "ai"), ("eq", "powered")}),
        frozenset({("pre", "ratif")}),
    }


def test_the_characters_that_fold_to_ascii_letters_are_all_known():
    # Every non-ASCII character that IGNORECASE matches to an ASCII letter or
    # digit, or that lowers to one, turns the prefilter off for its text.
    letters = re.compile(r"[a-z0-9]", re.IGNORECASE)
    folding = {
        chr(cp)
        for cp in range(128, 0x110000)
        if letters.fullmatch(chr(cp)) or any(ch.isascii() and ch.isalnum() for ch in chr(cp).lower())
    }
    assert folding <= set(CASE_FOLDS_TO_ASCII)


def test_features_are_shared_words_bigrams_and_char_ngrams():
    f = features("Say on pay", "MANAGEMENT")
    assert f["w:say"] == 1 and f["b:on_pay"] == 1 and f["c: pa"] == 1 and f["p:MANAGEMENT"] == 1


def test_evaluation_counts_a_hit_when_any_filed_category_is_given():
    ev = Evaluation()
    ev.add("ISSUER", {"AUDIT_RELATED"}, ("AUDIT_RELATED", "OTHER"), False)
    ev.add("SECURITY HOLDER", {"CORPORATE_GOVERNANCE"}, ("SHAREHOLDER_RIGHTS_AND_DEFENSES",), True)
    assert ev.by_source["MANAGEMENT"].hits == 1 and ev.by_source["SHAREHOLDER"].hits == 0
    assert ev.confusions[("SHAREHOLDER_RIGHTS_AND_DEFENSES", "CORPORATE_GOVERNANCE")] == 1
    assert ev.total.categories == 3 and ev.total.review == 1


def test_category_spellings_and_issuer_folds():
    assert category_code("HUMAN RIGHTS OR HUMAN CAPITAL/WORKFORCE") == "HUMAN_RIGHTS_OR_HUMAN_CAPITAL"
    assert category_code("SECTION 14A SAY-ON-PAY VOTES") == "SECTION_14A_SAY_ON_PAY"
    with pytest.raises(ValueError):
        category_code("NOT A CATEGORY")
    assert issuer_key("WALMART INC.") == issuer_key("Walmart Inc")
    assert fold_of("Walmart Inc.", 5) == fold_of("WALMART INC", 5)
