import statistics
import time

import numpy as np
import pytest

from accel_lib.bench import (
    Comparison,
    Timing,
    compare,
    markdown_table,
    ratio_table,
    summarize_ms,
    time_fn,
)


def test_summarize_ms_hand_computed():
    # sorted: 1 2 3 4 100 -> median 3; Q1 = 2, Q3 = 4 (linear interpolation)
    assert summarize_ms([3, 1, 100, 2, 4]) == (3.0, 2.0)
    assert summarize_ms([5.0]) == (5.0, 0.0)
    assert summarize_ms([1, 2, 3, 4]) == (2.5, 1.5)


def test_summarize_ms_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (2, 7, 50):
        x = rng.exponential(size=n)
        median, iqr = summarize_ms(x)
        q1, q3 = np.percentile(x, [25, 75])
        assert median == pytest.approx(np.median(x))
        assert iqr == pytest.approx(q3 - q1)


@pytest.mark.parametrize("bad", [[], [1.0, -2.0], [float("nan")]])
def test_summarize_ms_rejects_bad_samples(bad):
    with pytest.raises(ValueError, match="samples_ms"):
        summarize_ms(bad)


def test_time_fn_counts_warmup_and_repeats():
    calls = []
    t = time_fn(lambda: calls.append(1), warmup=2, repeats=5, number=3, name="append")
    assert len(calls) == 2 + 5 * 3
    assert len(t.samples_ms) == 5 and t.name == "append" and t.device == "cpu"
    assert all(s >= 0 for s in t.samples_ms)


def test_time_fn_measures_a_known_sleep():
    t = time_fn(lambda: time.sleep(0.002), warmup=1, repeats=5)
    assert t.median_ms >= 2.0  # sleep never returns early; no upper bound asserted (noisy)
    assert t.min_ms <= t.median_ms
    assert t.mean_ms == pytest.approx(statistics.fmean(t.samples_ms))


def test_time_fn_auto_number_batches_fast_calls():
    calls = []
    time_fn(lambda: calls.append(1), warmup=0, repeats=2, min_sample_ms=0.5)
    assert len(calls) > 3  # a no-op is far below 0.5 ms, so several calls make a sample


@pytest.mark.parametrize(
    "kwargs, word",
    [({"warmup": -1}, "warmup"), ({"repeats": 0}, "repeats"), ({"number": 0}, "number")],
)
def test_time_fn_rejects_bad_counts(kwargs, word):
    with pytest.raises(ValueError, match=word):
        time_fn(lambda: None, **kwargs)


def test_time_fn_rejects_non_callable():
    with pytest.raises(ValueError, match="fn must be callable"):
        time_fn(3)


def test_timing_throughput_and_str():
    t = Timing("x", (2.0, 2.0, 2.0))
    assert t.throughput(64) == pytest.approx(32_000.0)
    assert "2.000 ms median" in str(t)


def test_comparison_speedup_and_table():
    c = Comparison(Timing("slow", (4.0, 4.0)), Timing("fast", (1.0, 1.0)))
    assert c.speedup == 4.0
    table = c.table()
    assert "| slow |" in table and "| fast |" in table and "4.000" in table


def test_compare_interleaves_and_prints(capsys):
    order = []
    result = compare(lambda: order.append("a"), lambda: order.append("b"), warmup=1, repeats=3,
                     names=("A", "B"))
    assert result.baseline.name == "A" and len(result.optimized.samples_ms) == 3
    assert order[:2] == ["a", "b"]
    assert "| A |" in capsys.readouterr().out


def test_compare_rejects_non_callables():
    with pytest.raises(ValueError, match="optimized must be callable"):
        compare(lambda: None, None)


def test_markdown_table_shapes_and_errors():
    text = markdown_table(["a", "b"], [[1, 2.5], ["x", 1234567.0]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and lines[2] == "| 1 | 2.500 |"
    assert "1.235e+06" in lines[3]
    with pytest.raises(ValueError, match=r"rows\[0\]"):
        markdown_table(["a"], [[1, 2]])


def test_ratio_table():
    text = ratio_table([("latency", 4.0, 2.0, "ms"), ("size", 100, 25, "bytes")])
    assert "| latency | ms | 4.000 | 2.000 | 2.000 |" in text
    assert "| size | bytes | 100 | 25 | 4.000 |" in text
    with pytest.raises(ValueError, match="metric"):
        ratio_table([("latency", 1.0)])


def test_markdown_table_escapes_what_would_break_a_cell():
    """Notebook 03's row "own int8 Linear, max error / max |y|" was cut at the first "|";
    a newline ended the row. Rendered by mistune (nbconvert's Markdown parser, HTML on as in
    Jupyter), every row keeps its cells and every cell its text."""
    import re

    import mistune

    rows = [["own int8 Linear, max error / max |y|", "0.5%"], ["two\nlines", "a|b|c"],
            ["windows\r\nline", 3]]
    table = markdown_table(["measure | unit", "value"], rows)
    assert len(table.splitlines()) == 2 + len(rows)
    assert r"max error / max \|y\|" in table and "two<br>lines" in table
    html = mistune.create_markdown(escape=False, plugins=["table"])(table)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in html.split("<tr>")[1:]]
    assert cells == [["measure | unit", "value"],
                     ["own int8 Linear, max error / max |y|", "0.5%"],
                     ["two<br>lines", "a|b|c"], ["windows<br>line", "3"]]
