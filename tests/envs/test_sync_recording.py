"""Recordings on disk: exact CSV/Parquet round trips and a clear error for every malformed file."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envs.plant import Plant, PlantConfig
from envs.scenario import SCENARIO_DIR
from envs.sync import Recording, RecordingError, load_recording, record, save_recording

NAMES = [f"machining-{k}" for k in (1, 2, 3, 4)] + ["welding-1", "welding-2", "inspection-1"]


@pytest.fixture(scope="module")
def recording() -> Recording:
    config = PlantConfig(seed=5, dropout_probability=0.1)
    with Plant(config) as plant:
        assert plant.machine_names == NAMES == plant.nominal_scenario.machine_names
        return record(plant, 2)  # 10 samples, about 10 % of them lost


def assert_same(a: Recording, b: Recording) -> None:
    assert (a.start_s, a.seed, a.sample_interval_s, a.scenario) == (
        b.start_s,
        b.seed,
        b.sample_interval_s,
        b.scenario,
    )
    assert len(a.samples) == len(b.samples) and len(a.setpoints) == len(b.setpoints)
    for x, y in zip(a.samples, b.samples, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == y[key] or (math.isnan(x[key]) and math.isnan(y[key])), key
    for x, y in zip(a.setpoints, b.setpoints, strict=True):
        for u, v in zip(x, y, strict=True):
            assert u.dtype == v.dtype and np.array_equal(u, v)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_is_exact_with_lost_samples(recording, tmp_path, suffix):
    lost = sum(math.isnan(v) for s in recording.samples for v in s.values())
    assert lost > 0  # the round trip covers NaN
    path = save_recording(recording, tmp_path / f"window{suffix}")
    assert_same(recording, load_recording(path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_failed_write_leaves_the_previous_file_whole(recording, tmp_path, monkeypatch):
    from envs.sync import recording_writer

    path = save_recording(recording, tmp_path / "window.csv")
    before = path.read_bytes()

    def crash(temporary, columns, metadata):
        temporary.write_text("# twinfactory-recording v1 half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(recording_writer, "_write_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        save_recording(recording, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["window.csv"]  # no temp file left


def test_csv_layout_is_the_documented_one(recording, tmp_path):
    lines = save_recording(recording, tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == (
        "# twinfactory-recording v1 scenario=automotive_components seed=5 start_s=21600.0 "
        "sample_interval_s=60.0"
    )
    header = lines[1].split(",")
    assert header[0] == "time_s" and "machining-1.vibration" in header
    assert "welding-1.vibration" not in header and "inspection-1.standby" in header
    assert lines[2].startswith("60.0,") and len(lines) == 2 + len(recording.samples)
    table = pq.read_table(save_recording(recording, tmp_path / "r.parquet"))
    assert table.schema.metadata[b"twinfactory-recording"] == b"v1"
    assert table.schema.metadata[b"seed"] == b"5" and table.column_names == header


def test_hand_written_csv_loads_with_lost_samples_and_a_scenario_next_to_it(tmp_path):
    shutil.copy(SCENARIO_DIR / "automotive_components.toml", tmp_path / "line.toml")
    setpoints = ",".join(f"{m}.speed_factor,{m}.maintenance,{m}.standby" for m in NAMES)
    values = ",".join(["1.1,0,1"] * len(NAMES))
    path = tmp_path / "plant.csv"
    path.write_text(
        "# twinfactory-recording v1 scenario=line.toml seed=3 start_s=0 sample_interval_s=30\n"
        f"time_s,machining-1.temperature,welding-2.state,{setpoints}\n"
        f"30,21.5,2,{values}\n"
        f"60.0,,3,{values}\n"
        f"90,nan,3,{values}\n"
    )
    loaded = load_recording(path)
    assert loaded.scenario == str(tmp_path / "line.toml") and loaded.start_s == 0.0
    assert loaded.samples[0]["machining-1.temperature"] == 21.5
    assert all(math.isnan(s["machining-1.temperature"]) for s in loaded.samples[1:])
    speed, maintenance, standby = loaded.setpoints[0]
    assert speed.tolist() == [1.1] * 7 and not maintenance.any() and standby.all()


def test_record_follows_a_schedule_and_keeps_maintenance_to_its_first_sample():
    def schedule(k):
        speed = np.full(7, 0.8 if k == 0 else 1.2)
        return speed, np.arange(7) == k, np.zeros(7, dtype=bool)

    with Plant(PlantConfig(seed=1)) as plant:
        recording = record(plant, 2, schedule)
    speeds = [s[0][0] for s in recording.setpoints]
    assert speeds == [0.8] * 5 + [1.2] * 5
    maintenance = np.array([s[1] for s in recording.setpoints])
    assert maintenance[0, 0] and maintenance[5, 1] and maintenance.sum() == 2


# -- malformed files -------------------------------------------------------------------------


@pytest.fixture
def csv_lines(recording, tmp_path) -> list[str]:
    return save_recording(recording, tmp_path / "good.csv").read_text().splitlines()


def header_index(lines: list[str], column: str) -> int:
    return lines[1].split(",").index(column)


def set_cell(lines: list[str], line: int, column: str, value: str) -> list[str]:
    cells = lines[line - 1].split(",")
    cells[header_index(lines, column)] = value
    return [*lines[: line - 1], ",".join(cells), *lines[line:]]


def drop_column(lines: list[str], column: str) -> list[str]:
    index = header_index(lines, column)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        out.append(",".join(cells[:index] + cells[index + 1 :]))
    return out


def rename_column(lines: list[str], old: str, new: str) -> list[str]:
    return [lines[0], lines[1].replace(old, new), *lines[2:]]


def meta(lines: list[str], old: str, new: str) -> list[str]:
    return [lines[0].replace(old, new), *lines[1:]]


CSV_CASES = {
    "no metadata line": (lambda L: L[1:], r"line 1: the metadata line is missing"),
    "foreign metadata": (lambda L: ["# exported by SCADA", *L[1:]], r"not a twinfactory-record"),
    "garbled metadata": (lambda L: meta(L, "seed=5", "seed=5 oops"), r"garbled metadata 'oops'"),
    "unbalanced quote": (lambda L: meta(L, "seed=5", "seed='5"), r"garbled metadata line"),
    "no version": (lambda L: meta(L, " v1 ", " "), r"format version is missing"),
    "version 2": (lambda L: meta(L, " v1 ", " v2 "), r"unknown format version 'v2'.*reads v1"),
    "missing key": (lambda L: meta(L, " seed=5", ""), r"metadata lacks seed"),
    "unknown key": (lambda L: meta(L, "seed=5", "seed=5 sead=4"), r"unknown metadata key.*sead"),
    "bad seed": (lambda L: meta(L, "seed=5", "seed=-1"), r"seed='-1' must be an integer >= 0"),
    "bad start": (lambda L: meta(L, "start_s=21600.0", "start_s=6h"), r"start_s='6h' is not a"),
    "start past a week": (
        lambda L: meta(L, "start_s=21600.0", "start_s=604800"),
        r"start_s=604800.0 is outside \[0, 604800\)",
    ),
    "interval off ticks": (
        lambda L: meta(L, "sample_interval_s=60.0", "sample_interval_s=45"),
        r"sample_interval_s=45.0 must be a positive whole multiple of the scenario's tick_s",
    ),
    "unknown scenario": (
        lambda L: meta(L, "automotive_components", "paint_shop"),
        r"scenario='paint_shop'.*no shipped scenario 'paint_shop'",
    ),
    "missing scenario file": (
        lambda L: meta(L, "automotive_components", "missing.toml"),
        r"scenario='missing.toml': no such scenario file",
    ),
    "no header": (lambda L: L[:1], r"line 2: no header line"),
    "no rows": (lambda L: L[:2], r"no samples after the header"),
    "no time_s": (lambda L: rename_column(L, "time_s", "t"), r"no 'time_s' column"),
    "duplicate column": (
        lambda L: rename_column(L, "machining-1.power", "machining-1.wear"),
        r"column 'machining-1.wear' appears twice",
    ),
    "non-numeric cell": (
        lambda L: set_cell(L, 4, "machining-2.temperature", "hot"),
        r"line 4, column 'machining-2.temperature': 'hot' is not a number",
    ),
    "short row": (
        lambda L: [*L[:5], L[5].rsplit(",", 1)[0]],
        r"line 6: 53 cells but the header has 54 columns",
    ),
    "infinite cell": (
        lambda L: set_cell(L, 3, "welding-1.power", "inf"),
        r"line 3, column 'welding-1.power': infinite value",
    ),
    "missing time": (
        lambda L: set_cell(L, 5, "time_s", ""),
        r"line 5, column 'time_s': missing or not finite",
    ),
    "time goes back": (
        lambda L: set_cell(L, 5, "time_s", "60.0"),
        r"line 5, column 'time_s': 60 does not increase \(previous row 120\)",
    ),
    "time step uneven": (
        lambda L: set_cell(L, 5, "time_s", "185.0"),
        r"line 5, column 'time_s': step 65 s from the previous row, expected "
        r"sample_interval_s = 60 s",
    ),
    "first time": (
        lambda L: set_cell(L, 3, "time_s", "0"),
        r"line 3, column 'time_s': the first sample is at 0 s, expected",
    ),
    "unknown machine": (
        lambda L: rename_column(L, "machining-1.power", "machining-5.power"),
        r"column 'machining-5.power': machine 'machining-5' is not in the line of scenario "
        r"automotive_components \(machining-1, .*inspection-1\)",
    ),
    "unknown kind": (
        lambda L: rename_column(L, "machining-1.power", "machining-1.pwr"),
        r"column 'machining-1.pwr': not a known column",
    ),
    "robot vibration": (
        lambda L: rename_column(L, "welding-1.power", "welding-1.vibration"),
        r"column 'welding-1.vibration': only CncMill machines measure vibration",
    ),
    "missing setpoint": (
        lambda L: drop_column(L, "welding-2.standby"),
        r"setpoint column\(s\) missing: welding-2.standby",
    ),
    "empty setpoint": (
        lambda L: set_cell(L, 7, "machining-3.speed_factor", ""),
        r"line 7, column 'machining-3.speed_factor': setpoints cannot be empty or NaN",
    ),
    "fast speed": (
        lambda L: set_cell(L, 4, "welding-1.speed_factor", "1.3"),
        r"line 4, column 'welding-1.speed_factor': speed factor 1.3 is outside the machine's "
        r"speed range \[0.5, 1.25\]",
    ),
    "maintenance 2": (
        lambda L: set_cell(L, 3, "machining-1.maintenance", "2"),
        r"line 3, column 'machining-1.maintenance': 2.0 is not 0 or 1",
    ),
    "empty state": (
        lambda L: set_cell(L, 6, "inspection-1.state", ""),
        r"line 6, column 'inspection-1.state': nan is not a MachineState code",
    ),
    "bad state": (
        lambda L: set_cell(L, 6, "inspection-1.state", "2.5"),
        r"'inspection-1.state': 2.5 is not a MachineState code \(0 OFF, 1 STANDBY",
    ),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_malformed_csv_is_rejected_with_where_and_how(csv_lines, tmp_path, case):
    edit, message = CSV_CASES[case]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(edit(list(csv_lines))) + "\n")
    with pytest.raises(RecordingError, match=message) as caught:
        load_recording(path)
    assert str(path) in str(caught.value)


def test_files_that_are_not_recordings_are_rejected(recording, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("\n  \n")
    with pytest.raises(RecordingError, match=r"empty.csv: the file is empty"):
        load_recording(empty)
    fake = tmp_path / "fake.parquet"
    fake.write_text("time_s,a\n1,2\n")
    with pytest.raises(RecordingError, match=r"fake.parquet: not a readable Parquet file"):
        load_recording(fake)
    with pytest.raises(RecordingError, match=r"unsupported file type '.xlsx'.*'.csv' or '.parq"):
        load_recording(tmp_path / "plant.xlsx")
    with pytest.raises(RecordingError, match=r"unsupported file type"):
        save_recording(recording, tmp_path / "plant.json")
    with pytest.raises(RecordingError, match=r"missing.csv: no such file"):
        load_recording(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordingError, match=r"not a UTF-8 text CSV"):
        load_recording(binary)


def test_malformed_parquet_is_rejected(recording, tmp_path):
    table = pq.read_table(save_recording(recording, tmp_path / "good.parquet"))
    path = tmp_path / "bad.parquet"

    def rejected(bad: pa.Table, message: str) -> None:
        pq.write_table(bad, path)
        with pytest.raises(RecordingError, match=message):
            load_recording(path)

    rejected(table.replace_schema_metadata({}), r"no 'twinfactory-recording' format version")
    metadata = dict(table.schema.metadata)
    rejected(
        table.replace_schema_metadata({**metadata, b"twinfactory-recording": b"v9"}),
        r"unknown format version 'v9'",
    )
    rejected(
        table.replace_schema_metadata({k: v for k, v in metadata.items() if k != b"start_s"}),
        r"metadata lacks start_s",
    )
    index = table.column_names.index("machining-1.speed_factor")
    speeds = table.column(index).to_pylist()
    rejected(
        table.set_column(
            index, "machining-1.speed_factor", pa.array([*speeds[:1], None, *speeds[2:]])
        ),
        r"row 2, column 'machining-1.speed_factor': setpoints cannot be empty",
    )
    rejected(
        table.set_column(index, "machining-1.speed_factor", pa.array(["1.0"] * len(speeds))),
        r"column 'machining-1.speed_factor': type string is not numeric",
    )
    time = table.column(0).to_pylist()
    rejected(
        table.set_column(0, "time_s", pa.array([*time[:3], time[3] + 1.0, *time[4:]])),
        r"row 4, column 'time_s': step 61 s",
    )
