"""Tests of MetricsLog, the append-only metrics.jsonl of a run."""

import json

from forwardforward.training import MetricsLog


def reject_constant(name):
    raise ValueError(f"bare {name} is not JSON")


def test_append_read_round_trip(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")

    log.append({"epoch": 1, "loss": 0.5})
    log.append({"epoch": 2, "loss": 0.25})

    assert log.read() == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]


def test_read_missing_file(tmp_path):
    assert MetricsLog(tmp_path / "absent.jsonl").read() == []


def test_read_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "lo', encoding="utf-8")

    assert MetricsLog(path).read() == [{"epoch": 1}, {"epoch": 2}]


def test_truncate_after_epoch(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch})

    log.truncate_after(2)

    assert log.read() == [{"epoch": 1}, {"epoch": 2}]


def test_truncate_drops_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo', encoding="utf-8")
    log = MetricsLog(path)

    log.truncate_after(1)

    assert path.read_text(encoding="utf-8") == '{"epoch": 1}\n'


def test_truncate_to_zero(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1})

    log.truncate_after(0)

    assert log.read() == []


def test_append_after_truncate(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo', encoding="utf-8")
    log = MetricsLog(path)

    log.truncate_after(1)
    log.append({"epoch": 2})

    assert log.read() == [{"epoch": 1}, {"epoch": 2}]


def test_truncate_leaves_no_temporary(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1})

    log.truncate_after(1)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_non_finite_values_strict_json(tmp_path):
    path = tmp_path / "metrics.jsonl"

    MetricsLog(path).append({"epoch": 1, "loss": float("nan"), "goodness": float("inf")})

    record = json.loads(path.read_text(encoding="utf-8"), parse_constant=reject_constant)
    assert record == {"epoch": 1, "loss": "nan", "goodness": "inf"}


def test_one_line_per_record(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)

    log.append({"epoch": 1, "note": "two\nlines"})

    assert path.read_text(encoding="utf-8").count("\n") == 1
    assert log.read() == [{"epoch": 1, "note": "two\nlines"}]
