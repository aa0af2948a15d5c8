"""Helpers shared by the command-line tests (importable because pytest puts tests/ on sys.path)."""


def set_options(assignments):
    """Turn KEY=VALUE assignments into repeated `--set` options."""
    return [part for assignment in assignments for part in ("--set", assignment)]


def assert_one_line_error(result, code):
    """Check the exit status and that stderr is one `forwardforward: error:` line."""
    assert result.code == code, result.err
    assert result.err.startswith("forwardforward: error: ")
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
