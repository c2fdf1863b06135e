"""North American phone numbers in their common shapes, decided a column at a time instead of one parse each.

phonenumbers takes tens of microseconds to parse and validate one number, and a customer table has about one
distinct number per order: on a run of store orders it was the largest single cost of preparation. Most numbers
in such tables are written in a few plain shapes, ``(206) 555-0100``, ``206-555-0100``, ``206.555.0100``,
``2065550100``, ``+1 206 555 0100``. For those shapes, what ``parse_e164`` would do is known without parsing:

- ``phonenumbers.parse`` takes the ten digits as the national number (country code 1 when written with ``+1``;
  for a number without ``+``, in a default region of country code 1 whose national prefix for parsing is ``1``,
  nothing is stripped from ten digits starting 2 to 9);
- validity is phonenumbers' own test, ``_number_type_helper(national, metadata) != UNKNOWN``: the number fully
  matches the region's general pattern and the pattern of at least one number type, each where ten digits is one
  of the lengths the pattern allows. The patterns are read from the phonenumbers metadata installed (so a new
  release brings its own) and run by RE2, through pyarrow, over the whole column.

This only ever *accepts*. A value of any other shape, or one the patterns do not validate, is left undecided and goes
to ``parse_e164``, so the answer is the same by construction; a hypothesis test checks it against phonenumbers.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata

# Optional "+1", then ten digits, the first 2 to 9, grouped 3-3-4 by one space, dot or hyphen, or none; the area
# code may be in parentheses. ASCII only: phonenumbers takes more punctuation, which stays with it.
_SHAPE = r"^ *(?:\+1[ .-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[0-9]{3}[ .-]?[0-9]{4} *$"
_PLUS_ONE = r"^ *\+1"
_SEPARATORS = (" ", "(", ")", "-", ".", "+")  # every character of _SHAPE that is not a digit
_NATIONAL_LENGTH = 10
# The number types _number_type_helper tries (the order does not matter: any match makes the number valid).
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _matches_length(desc: object) -> bool:
    lengths = getattr(desc, "possible_length", ())
    return not lengths or _NATIONAL_LENGTH in lengths


@lru_cache(maxsize=64)
def validity_patterns(region: str) -> tuple[str, str] | None:
    """RE2 patterns (the general one, any number type) that ten national digits must match to be valid in
    ``region``, or None when ``region`` is not a country code 1 region or its metadata has no such patterns."""
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.country_code != 1:
        return None
    general = metadata.general_desc
    if general is None or not general.national_number_pattern or not _matches_length(general):
        return None
    types = [
        desc.national_number_pattern
        for desc in (getattr(metadata, name) for name in _TYPES)
        if desc is not None and desc.national_number_pattern and _matches_length(desc)
    ]
    if not types:
        return None
    return f"^(?:{general.national_number_pattern})$", "^(?:" + "|".join(f"(?:{p})" for p in types) + ")$"


def _plain_national_prefix(region: str) -> bool:
    """Whether ten digits starting 2 to 9, written without ``+``, reach validation unchanged in ``region``."""
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    return metadata is not None and metadata.country_code == 1 and metadata.national_prefix_for_parsing in (None, "1")


def _valid(national: pa.Array, region: str) -> pa.Array:
    patterns = validity_patterns(region)
    if patterns is None:
        return pa.array([False] * len(national), pa.bool_())
    general, types = patterns
    return pc.and_(pc.match_substring_regex(national, general), pc.match_substring_regex(national, types))


def e164_of_plain_shapes(values: pa.Array, region: str) -> pa.Array:
    """For each text value, its E.164 form when it has a plain North American shape and is valid; else NULL
    (undecided: ask ``parse_e164``). NULL values stay NULL."""
    shaped = pc.fill_null(pc.match_substring_regex(values, _SHAPE), False)
    if not pc.any(shaped).as_py():
        return pa.nulls(len(values), pa.string())
    # In a value of the shape, what is not a digit is one of these: deleting them a literal at a time costs a third
    # of one regex replacement (the digits of values of other shapes are never read).
    digits = values
    for separator in _SEPARATORS:
        digits = pc.replace_substring(digits, separator, "")
    national = pc.utf8_slice_codeunits(digits, -_NATIONAL_LENGTH)
    plus = pc.fill_null(pc.match_substring_regex(values, _PLUS_ONE), False)
    # Written with +1, any default region gives country code 1; without it, only a region of country code 1 whose
    # national prefix leaves ten digits alone. Then phonenumbers tries the default region, then the regions of
    # country code 1, the US first (is_valid_number): valid in either is valid.
    read_as_nanp = plus if not _plain_national_prefix(region) else pa.array([True] * len(values), pa.bool_())
    valid = _valid(national, "US")
    if region.upper() != "US":
        valid = pc.or_(valid, _valid(national, region))
    valid = pc.and_(read_as_nanp, pc.fill_null(valid, False))
    decided = pc.and_(shaped, valid)
    return pc.if_else(decided, pc.binary_join_element_wise("+1", national, ""), pa.scalar(None, pa.string()))


__all__ = ["e164_of_plain_shapes", "validity_patterns"]
