"""The validator: every bad fixture is caught with its message, the good ones pass."""

from pathlib import Path

import pytest

from il6rcc.data import lint_main, lint_paths, shipped_dir

FIXTURES = Path(__file__).parent / "fixtures"
BAD = FIXTURES / "bad_evidence"


def _expected() -> dict[str, str]:
    lines = (BAD / "expected_messages.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines[1:] if line.strip())


EXPECTED = _expected()


def test_every_bad_fixture_has_an_expectation():
    on_disk = {p.name for p in BAD.glob("*.tsv")}
    assert on_disk == set(EXPECTED), on_disk ^ set(EXPECTED)
    assert len(on_disk) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_fixture_is_caught_with_its_message(name):
    issues = lint_paths([BAD / name])
    messages = [str(i) for i in issues]
    assert len(issues) == 1, messages  # one defect, one problem: no cascades
    assert EXPECTED[name] in issues[0].message, messages
    assert str(issues[0]).startswith(f"{BAD / name}:")


def test_good_fixtures_lint_clean():
    assert lint_paths([FIXTURES / "good_evidence.tsv"]) == []
    assert lint_paths([FIXTURES / "digitised_SYNTHETIC.tsv"]) == []


def test_shipped_tables_lint_clean():
    issues = lint_paths([shipped_dir()])
    assert issues == [], "\n".join(map(str, issues))


def test_every_problem_of_a_file_in_one_pass(tmp_path):
    good = (FIXTURES / "good_evidence.tsv").read_text(encoding="utf-8").splitlines()
    header, row = good[0], good[1].split("\t")
    cols = header.split("\t")
    bad_rows = []
    for i, (col, value) in enumerate(
        [("cell_line", "786-X"), ("observable_id", "nope"), ("direction", "sideways")]
    ):
        cells = list(row)
        cells[cols.index("row_id")] = f"multi-{i}"
        cells[cols.index(col)] = value
        bad_rows.append("\t".join(cells))
    path = tmp_path / "multi.tsv"
    path.write_text("\n".join([header, *bad_rows]) + "\n", encoding="utf-8")
    issues = lint_paths([path])
    assert [i.line for i in issues] == [2, 3, 4]
    assert "786-X" in issues[0].message
    assert "nope" in issues[1].message
    assert "sideways" in issues[2].message


def test_duplicate_row_ids_across_files(tmp_path):
    text = (FIXTURES / "good_evidence.tsv").read_text(encoding="utf-8")
    (tmp_path / "a.tsv").write_text(text, encoding="utf-8")
    (tmp_path / "b.tsv").write_text(text.replace("\tup\t", "\tdown\t"), encoding="utf-8")
    messages = [i.message for i in lint_paths([tmp_path])]
    assert sum("is already used" in m for m in messages) == 2


def test_lint_main_prints_file_line_message_and_exit_status(capsys):
    assert lint_main([str(FIXTURES / "good_evidence.tsv")]) == 0
    bad = BAD / "unknown_cell_line.tsv"
    assert lint_main([str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{bad}:2: " + lint_paths([bad])[0].message]


def test_missing_path_is_reported(tmp_path):
    issues = lint_paths([tmp_path / "nope.tsv"])
    assert len(issues) == 1 and "no such file" in issues[0].message
