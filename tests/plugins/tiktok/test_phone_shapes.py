"""Phone numbers in plain North American shapes are decided a column at a time, exactly as phonenumbers decides them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offramp.plugins.tiktok.identifiers import parse_e164
from offramp.plugins.tiktok.phone_shapes import e164_of_plain_shapes, validity_patterns

REGIONS = ["US", "CA", "PR", "AG", "JM", "GB", "DE", "FR"]

_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  ", "/", "\u2013"])
_PREFIXES = st.sampled_from(["", "", "", "+1", "+1 ", "+1-", "+1.", "1 ", "1-", "+44 ", "001 ", "+", " ", "(+1)"])


@st.composite
def nanp_like(draw: st.DrawFn) -> str:
    """Ten digits in the shapes people type, and near misses: wrong lengths, odd separators, other prefixes."""
    area = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    exchange = draw(st.text(alphabet="0123456789", min_size=2, max_size=4))
    line = draw(st.text(alphabet="0123456789", min_size=3, max_size=5))
    if draw(st.booleans()):
        area = f"({area})"
    first, second = draw(_SEPARATORS), draw(_SEPARATORS)
    suffix = draw(st.sampled_from(["", "", " ", " x12", "#"]))
    return f"{draw(_PREFIXES)}{area}{first}{exchange}{second}{line}{suffix}"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(nanp_like(), st.text(max_size=16)), min_size=1, max_size=60), st.sampled_from(REGIONS))
def test_every_number_the_shapes_decide_is_what_phonenumbers_says(values: list[str], region: str) -> None:
    decided = e164_of_plain_shapes(pa.array(values, pa.string()), region).to_pylist()
    for value, number in zip(values, decided, strict=True):
        if number is not None:
            assert number == parse_e164(value.strip(), region), value


@pytest.mark.parametrize(
    "value",
    ["(206) 555-0100", "206-555-0100", "206.555.0100", "2065550100", "206 555 0100", "+1 206 555 0100",
     "+12065550100", "+1-206-555-0100", "+1 (206) 555-0100", " (206)555-0100 "],
)  # fmt: skip
@pytest.mark.parametrize("region", ["US", "CA"])
def test_the_plain_shapes_of_a_valid_number_are_decided_without_phonenumbers(value: str, region: str) -> None:
    (number,) = e164_of_plain_shapes(pa.array([value]), region).to_pylist()
    assert number == "+12065550100" == parse_e164(value.strip(), region)


@pytest.mark.parametrize(
    "value",
    [
        "(206) 555-01000",  # eleven digits
        "1 206 555 0100",  # a national prefix: phonenumbers strips it
        "(206) 555\u20130100",  # punctuation outside ASCII
        "206-555-0100 x12",  # an extension
        "+44 20 7946 0018",  # another country
        "(123) 555-0100",  # an area code cannot start with 1
        "",
    ],
)
def test_other_shapes_are_left_to_phonenumbers(value: str) -> None:
    assert e164_of_plain_shapes(pa.array([value]), "US").to_pylist() == [None]


def test_a_number_without_a_country_code_in_a_region_outside_north_america_is_left_to_phonenumbers() -> None:
    # In Germany "206 555 0100" is a German number (or none): only phonenumbers can say.
    assert e164_of_plain_shapes(pa.array(["206 555 0100", "+1 206 555 0100"]), "DE").to_pylist() == [
        None,
        "+12065550100",
    ]


def test_an_invalid_north_american_number_is_never_accepted() -> None:
    # Area code 555 is not assigned and an exchange cannot start with 0: the patterns refuse both, as phonenumbers does.
    values = ["(555) 555-0100", "(206) 011-0100"]
    assert e164_of_plain_shapes(pa.array(values), "US").to_pylist() == [None, None]
    assert [parse_e164(value, "US") for value in values] == [None, None]


def test_nulls_stay_null_and_patterns_exist_only_for_country_code_1() -> None:
    assert e164_of_plain_shapes(pa.array([None, "(206) 555-0100"], pa.string()), "US").to_pylist() == [
        None,
        "+12065550100",
    ]
    assert validity_patterns("US") is not None and validity_patterns("CA") is not None
    assert validity_patterns("GB") is None and validity_patterns("ZZ") is None
