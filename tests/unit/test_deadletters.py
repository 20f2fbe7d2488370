"""Dead letters always fit in Kafka (iotml.core.deadletters)."""

from __future__ import annotations

import hashlib

from iotml.core import headers as h
from iotml.core.deadletters import fit_dead_letter, fit_payload, record_size, shrink


def test_a_payload_within_the_limit_is_kept_whole_without_headers():
    assert fit_payload(b"x" * 100, 100) == (b"x" * 100, [])


def test_a_payload_over_the_limit_is_cut_to_a_prefix_with_its_size_and_hash():
    payload = bytes(range(256)) * 4096
    prefix, headers = fit_payload(payload, 1000)
    assert prefix == payload[:1000]
    assert dict(headers) == {
        h.ERROR_TRUNCATED: b"true",
        h.ERROR_ORIGINAL_SIZE: str(len(payload)).encode(),
        h.ERROR_SHA256: hashlib.sha256(payload).hexdigest().encode(),
    }


def test_a_fitted_dead_letter_fits_its_budget_key_and_headers_included():
    headers = [(h.ERROR_REASON, b"oversize"), ("big", b"h" * 5000)]
    value, fitted = fit_dead_letter(b"p" * 200_000, b"key", headers, 20_000)
    assert record_size(value, b"key", fitted) <= 20_000
    assert 10_000 < len(value) < 15_000
    assert dict(fitted)[h.ERROR_ORIGINAL_SIZE] == b"200000"


def test_shrinking_cuts_harder_then_keeps_only_the_essentials_then_gives_up():
    payload = b"p" * 100_000
    headers = [(h.ERROR_REASON, b"oversize"), (h.MQTT_QOS, b"1"), (h.ERROR_DETAIL, b"d" * 5000)]
    value, _ = fit_payload(payload, 80_000)
    headers += fit_payload(payload, 80_000)[1]
    forms = []
    form: tuple[bytes, bytes | None, list[tuple[str, bytes]]] | None = (value, b"k", headers)
    while form is not None:
        forms.append(form)
        form = shrink(*form, too_large=True)
    sizes = [len(v) for v, _, _ in forms]
    assert sizes == [80_000, 20_000, 5_000, 1_250, 0, 0]
    _, key, kept = forms[-1]
    assert key is None
    assert [k for k, _ in kept] == [
        h.ERROR_REASON,
        h.ERROR_DETAIL,
        h.ERROR_TRUNCATED,
        h.ERROR_ORIGINAL_SIZE,
        h.ERROR_SHA256,
    ]
    assert dict(kept)[h.ERROR_SHA256] == hashlib.sha256(payload).hexdigest().encode()
    assert len(dict(kept)[h.ERROR_DETAIL]) == 1000
