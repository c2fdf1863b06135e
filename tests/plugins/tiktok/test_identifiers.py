"""Identifier normalization and hashing, checked against TikTok's own worked examples and as properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offramp.plugins.tiktok.identifiers import (
    e164,
    hash_email,
    hash_external_id,
    hash_phone,
    normalize_emails,
    normalize_external_ids,
    normalize_phones,
)

# TikTok-documented inputs and their SHA-256 (docs/tiktok-api-facts.md, "Hashing").
ALICE = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
USER_123 = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"


def test_tiktoks_worked_examples_hash_to_tiktoks_values():
    assert hash_email(" ALICE_abc@gmail.com ") == ALICE
    assert hash_phone("(+1)2133734253", "US") == (PHONE, False)
    assert hash_external_id("user_123") == USER_123


def test_a_national_number_takes_the_default_region():
    assert e164("(213) 373-4253", "US") == "+12133734253"
    assert hash_phone("213 373 4253", "US") == (PHONE, False)
    assert e164("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize("value", ["5552671", "12345", "not a phone", "+1 555"])
def test_an_invalid_phone_is_dropped_and_flagged_never_hashed(value):
    assert hash_phone(value, "US") == (None, True)


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_values_are_dropped_never_hashed(value):
    assert hash_email(value) is None
    assert hash_external_id(value) is None
    assert hash_phone(value, "US") == (None, False)


def test_a_value_that_is_already_a_sha256_passes_through_lower_cased():
    assert hash_email(ALICE.upper()) == ALICE
    assert hash_phone(f" {PHONE} ", "US") == (PHONE, False)
    assert hash_external_id(USER_123) == USER_123


def test_lists_are_hashed_each_deduplicated_and_nulls_skipped():
    result = normalize_emails(["a@x.com", " A@X.com", None, "", "b@x.com"])
    assert result.hashes == (hash_email("a@x.com"), hash_email("b@x.com"))
    phones = normalize_phones(["(213) 373-4253", "5552671", None], "US")
    assert phones.hashes == (PHONE,) and phones.invalid == ("invalid_phone",)
    assert normalize_external_ids(None).hashes == ()


def test_external_id_keeps_its_case():
    assert hash_external_id(" User_123 ") == hashlib.sha256(b"User_123").hexdigest()


@given(st.text())
def test_email_normalization_is_idempotent_and_always_64_hex(value):
    once = hash_email(value)
    if once is None:
        assert not value.strip()
    else:
        assert len(once) == 64 and once == once.lower()
        assert hash_email(once) == once  # hashing a hash passes it through


@given(st.one_of(st.text(), st.from_regex(r"\+?[0-9 ()-]{5,20}", fullmatch=True)), st.sampled_from(["US", "GB", "DE"]))
def test_phone_normalization_is_idempotent(value, region):
    hashed, invalid = hash_phone(value, region)
    if hashed is not None:
        assert hash_phone(hashed, region) == (hashed, False)
        number = e164(value.strip(), region)
        if number is not None:
            assert e164(number, region) == number  # E.164 round-trips
    else:
        assert invalid == bool(value.strip())
