import pytest

from vitlessons.claims import Claims


def test_verdicts_carry_no_numbers_and_evidence_carries_them() -> None:
    claims = Claims()
    claims.exceeds("randomising texture raises shape bias", 0.91, 0.13, by=0.4, names=("randomised", "aligned"))
    claims.below("the aligned model follows texture", 0.62, 0.35, what="shape bias")
    claims.above("the model learns", 0.97, 0.9, what="accuracy")
    assert claims.verdicts() == ("reproduced      randomising texture raises shape bias\n"
                                 "NOT reproduced  the aligned model follows texture\n"
                                 "reproduced      the model learns")
    evidence = claims.evidence()
    assert "randomised 0.910 - aligned 0.130 = +0.780, needs > +0.400" in evidence
    assert "shape bias 0.620, needs < 0.350" in evidence and "accuracy 0.970, needs > 0.900" in evidence


def test_a_margin_decides_not_the_sign() -> None:
    claims = Claims()
    assert not claims.exceeds("a small gap is not enough", 0.5, 0.45, by=0.1).holds
    assert not claims.above("nan never holds", float("nan"), 0.0).holds


def test_claims_are_stated_once_and_must_exist() -> None:
    claims = Claims()
    with pytest.raises(ValueError, match="no claims"):
        claims.verdicts()
    claims.above("x", 1, 0)
    with pytest.raises(ValueError, match="already stated"):
        claims.above("x", 2, 0)
