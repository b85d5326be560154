"""scripts/benchmark_calibration.py: the reference re-implementation behaves as the reference code, and the script runs."""


import pytest
from _scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_calibration")


def test_reference_golden_section_keeps_its_quirks(bench):
    search = bench.ReferenceSearch.__new__(bench.ReferenceSearch)
    search.phi, search.max_iter, search.err = 1.618, 32, 0.25 / 1024
    calls = []

    def f(x):
        calls.append(x)
        return (x - 0.3) ** 2

    best = search.golden(f, 0.001, 0.999)
    assert abs(best - 0.3) < 0.01 and len(calls) <= 3 + 32
    assert calls[:3] == pytest.approx([0.001, 0.001 + 0.998 / 2.618, 0.999])  # a, b = a + (c - a)/(1 + phi), c
    # the bracket ends count as candidates: a decreasing function is "maximised" at the upper end c itself
    assert search.golden(lambda x: -x, 0.2, 0.8) == 0.8
    # an inverted bracket (interval narrower than 2 eps) evaluates a, b, c only and may return a point outside it
    calls.clear()
    assert search.golden(f, 0.5, 0.4) in (0.5, 0.4, 0.5 - 0.1 / 2.618) and len(calls) == 3


def test_benchmark_script_runs_and_writes_the_tables(bench, tmp_path):
    out = tmp_path / "bench.md"
    bench.main(["--quick", "--num-samples", "32", "--batch-size", "16", "--steps", "2", "4", "--output", str(out)])
    text = out.read_text()
    for row in ("ours: DP, kl (G=128)", "reference (paper gain, reference golden section)", "uniform grid", "cosine grid"):
        assert f"| {row} |" in text
    assert "Objective reached" in text and "N=4" in text


@pytest.mark.parametrize("args, flag", [(["--steps", "0"], "--steps"), (["--num-candidates", "x"], "--num-candidates"),
                                        (["--seed", "-1"], "--seed")])
def test_bad_arguments_name_the_flag(bench, args, flag, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(args)
    assert info.value.code == 2 and flag in capsys.readouterr().err
