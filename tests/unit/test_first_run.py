"""`ftk init` (the compose `init` service's Python half): a host's first-run state, idempotent, losing nothing."""

from __future__ import annotations

import stat

from conftest import clean_env, run_ftk


def init_home(tmp_path, env_text: str = "# my host\nFTK_UID=1000\nFTK_GID=1000\nMODEL_ID=Org/Model\n"):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text(env_text)
    env = clean_env(FTK_HOME=str(home), FTK_ENV_FILE=str(home / ".env"))
    return home, env


def test_init_makes_folders_ids_and_secrets_and_prints_the_client_key_once(tmp_path):
    home, env = init_home(tmp_path)
    r = run_ftk("init", "--uid", "4321", "--gid", "4322", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    for folder in ("models", "runs/gateway", "runs/monitor", ".cache/modelscope", "runs/secrets"):
        assert (home / folder).is_dir(), f"init did not make {folder}"
    text = (home / ".env").read_text()
    assert "FTK_UID=4321\n" in text and "FTK_GID=4322\n" in text
    assert "# my host\n" in text and "MODEL_ID=Org/Model\n" in text, "other lines are kept as they were"
    assert (home / ".env.bak").read_text().startswith("# my host\nFTK_UID=1000\n"), "the old .env is kept"
    for name in ("vllm_api_key", "api_keys", "grafana_admin_password"):
        mode = stat.S_IMODE((home / "runs/secrets" / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    key = (home / "runs/secrets/api_keys").read_text().splitlines()[1].split()[0]
    assert key in r.stdout, "the first client key is printed once"
    assert (home / "runs/secrets/vllm_api_key").read_text().strip() not in r.stdout + r.stderr


def test_a_second_init_changes_nothing(tmp_path):
    home, env = init_home(tmp_path)
    assert run_ftk("init", "--uid", "5", "--gid", "6", env=env).returncode == 0
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    r = run_ftk("init", "--uid", "5", "--gid", "6", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to do" in r.stdout + r.stderr
    after = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert after == before, "a second init must not change a file"


def test_init_without_env_file_says_to_copy_the_example(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = run_ftk("init", "--uid", "1", "--gid", "1", env=clean_env(FTK_HOME=str(home)))
    assert r.returncode == 1
    assert "cp .env.example .env" in r.stderr
    assert not (home / "runs").exists(), "nothing is made before the .env check"


def test_init_in_the_container_refuses_a_folder_outside_the_project(tmp_path):
    outside = tmp_path / "elsewhere" / "models"
    _, env = init_home(tmp_path, f"FTK_UID=1\nFTK_GID=1\nMODELS_DIR={outside}\n")
    r = run_ftk("init", "--uid", "1", "--gid", "1", "--project-only", env=env)
    assert r.returncode == 1
    assert str(outside) in r.stderr and "outside the project folder" in r.stderr and "mkdir -p" in r.stderr
    assert not outside.exists()
