"""scripts/federate.py profiles: the heuristics' KPIs per node, and a clear error for a bad
profile."""

from __future__ import annotations

from scripts import federate


def test_profiles_prints_one_row_per_node_and_heuristic(capsys):
    code = federate.main(
        ["profiles", "--nodes", "node-1", "held-out", "--seeds", "1", "--horizon-h", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = [
        line for line in out.splitlines() if line.startswith("| node-1") or "held-out |" in line
    ]
    assert len(rows) == 2 * 3  # two nodes × naive, fixed_interval, condition_based
    assert "held-out seeds 1000..1000" in out


def test_a_bad_profile_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nscenario = "automotive_components"\ndemand_factor = -1.0\n')
    assert federate.main(["profiles", "--nodes", str(bad), "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "demand_factor" in err
