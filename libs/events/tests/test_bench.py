from openlines.events.bench import codec_rates


def test_codec_rates_smoke() -> None:
    rates = codec_rates(n=50)
    assert all(rate > 0 for rate in rates.values())
