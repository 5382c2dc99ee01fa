"""One client address may make `per_minute` requests in any minute."""

from __future__ import annotations

from patient_web.rate_limit import RateLimit, too_many_page


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError


def test_a_sliding_minute_per_address() -> None:
    now = [100.0]
    limit = RateLimit(_app, per_minute=2, clock=lambda: now[0])  # type: ignore[arg-type]
    assert [limit.allow("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert limit.allow("10.0.0.2")  # another address has its own minute
    now[0] += 59.9
    assert not limit.allow("10.0.0.1")
    now[0] += 0.2
    assert limit.allow("10.0.0.1")


def test_the_page_is_plain_and_in_chinese_first() -> None:
    page = too_many_page()
    assert "请求太频繁" in page and "Please wait a minute" in page and "<script" not in page
