"""``ems operator create`` as a user runs it: a real process, the embedded database, then a sign-in check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ems.config import Settings
from ems.domain.access import Role
from ems.services.operators import check_sign_in
from ems.storage.factory import open_storage

ROOT = Path(__file__).parents[3]

pytestmark = pytest.mark.slow


def run(args: list[str], tmp_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMS_")}
    env.update({"EMS_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    return subprocess.run(
        [sys.executable, "-m", "ems", "operator", "create", *args],
        env=env,
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_operator_create_from_stdin_then_sign_in(tmp_path: Path) -> None:
    r = run(["--email", "Ops@Example.org", "--role", "admin", "--password-stdin"], tmp_path, "a long passphrase\n")
    assert r.returncode == 0 and "admin ops@example.org" in r.stdout, r.stderr
    r = run(["--email", "ops@example.org", "--password-stdin"], tmp_path, "another passphrase\n")
    assert r.returncode == 1 and "exists" in r.stderr and "Traceback" not in r.stderr
    r = run(["--email", "nope", "--password-stdin"], tmp_path, "short\n")
    assert r.returncode == 2 and "email:" in r.stderr and "password:" in r.stderr
    storage = await open_storage(Settings(data_dir=tmp_path / "data", _env_file=None))  # type: ignore[call-arg]
    try:
        account = await check_sign_in(storage.operators, "ops@example.org", "a long passphrase")
        assert account is not None and account.role is Role.ADMIN
        assert await check_sign_in(storage.operators, "ops@example.org", "another passphrase") is None
    finally:
        await storage.close()
