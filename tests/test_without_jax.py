"""The package, its command line and its PyTorch tests work when JAX is not installed.

Each check runs in a fresh interpreter in which `jax`, `flax` and `optax` cannot be imported
(their `sys.modules` entries are None), whether or not they are installed here.
"""

import subprocess
import sys
from pathlib import Path


BLOCK_JAX = "import sys; sys.modules.update(jax=None, flax=None, optax=None); "
TESTS = Path(__file__).parent
# Fast PyTorch test files of the core modules: goodness, objectives, labels, config and blocks.
TORCH_TEST_FILES = ("test_goodness.py", "test_objectives.py", "test_labels.py", "test_config.py", "test_layers.py")


def run_without_jax(code, env):
    return subprocess.run([sys.executable, "-c", BLOCK_JAX + code], capture_output=True, text=True,
                          env=env, timeout=300)


def test_package_imports_without_jax(cli_env):
    result = run_without_jax("import forwardforward, forwardforward.training, forwardforward.cli; print('ok')", cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_jax_subpackage_names_the_extra(cli_env):
    result = run_without_jax("import forwardforward.jax", cli_env)
    assert result.returncode != 0
    assert "pip install 'forwardforward[jax]'" in result.stderr


def test_cli_backend_jax_without_jax_is_usage_error(cli_env, synthetic_data_dir, tmp_path):
    code = (
        "from forwardforward.cli import main; "
        f"sys.exit(main(['train', '--backend', 'jax', '--data-dir', {str(synthetic_data_dir)!r}, "
        f"'--out', {str(tmp_path / 'run')!r}, '--quiet', '--set', 'data.limit=300']))"
    )
    result = run_without_jax(code, cli_env)
    assert result.returncode == 2, result.stderr
    assert "forwardforward[jax]" in result.stderr
    assert "Traceback" not in result.stderr


def test_torch_tests_pass_without_jax(cli_env):
    files = [str(TESTS / name) for name in TORCH_TEST_FILES]
    code = f"import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{files!r}]))"
    result = run_without_jax(code, cli_env)
    assert result.returncode == 0, result.stdout[-2000:]
    assert " passed" in result.stdout
