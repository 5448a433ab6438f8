"""Nothing is written through a link, FIFO or device someone planted in an output folder
(issue 29.2): the run refuses with one line and the file outside the run is unchanged."""
import logging
import os

import pytest

from helpers import one_error_line, run_tool, train_ok
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.utils.logger import LOGGER_NAME, setup_logger

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

QUICK = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=2"]


@pytest.mark.parametrize("name", [".lock", "train.log", "checkpoints", "vdl"])
def test_a_planted_link_in_the_run_folder_is_refused_and_its_target_unchanged(tmp_path, name):
    out, victim = tmp_path / "run", tmp_path / "victim"
    out.mkdir()
    if name in ("checkpoints", "vdl"):
        victim.mkdir()
    else:
        victim.write_text("precious\n")
    os.symlink(victim, out / name)
    res = run_tool("tools/train.py", *QUICK, "-o", f"Global.output_dir={out}")
    assert f"{out / name} is a symbolic link; refusing to write through it" in one_error_line(res)
    if victim.is_dir():
        assert os.listdir(victim) == []
    else:
        assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_lock_that_is_not_a_regular_file_is_one_line_and_no_hang(tmp_path, kind):
    out = tmp_path / "run"
    out.mkdir()
    if kind == "fifo":
        os.mkfifo(out / ".lock")
    else:
        os.symlink("/dev/null", out / ".lock")
    res = run_tool("tools/train.py", *QUICK, "-o", f"Global.output_dir={out}", timeout=120)
    line = one_error_line(res)
    assert "is not a regular file" in line if kind == "fifo" else "is a symbolic link" in line


def test_export_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    run = tmp_path / "run"
    train_ok(*QUICK, "-o", f"Global.output_dir={run}")
    exp, victim = tmp_path / "exp", tmp_path / "victim"
    exp.mkdir()
    victim.write_text("precious\n")
    for name in ("inference.pdiparams", "infer_cfg.json"):
        os.symlink(victim, exp / name)
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Global.output_dir={run}", "--out", exp)
    assert res.returncode == 0, res.stderr[-2000:]
    assert victim.read_text() == "precious\n"
    assert not (exp / "inference.pdiparams").is_symlink() and (exp / "inference.pdiparams").stat().st_size > 1000
    assert not [n for n in os.listdir(exp) if n.startswith(".export-")]


def test_a_full_disk_while_logging_is_one_notice_and_the_run_goes_on(tmp_path, capsys):
    """Before: one ``--- Logging error ---`` block (a traceback) for every line."""
    log = setup_logger(str(tmp_path), is_main=True)
    log.info("first line")
    handler = next(h for h in log.handlers if isinstance(h, logging.FileHandler))
    handler.stream = open("/dev/full", "w")  # every write now fails with ENOSPC
    for i in range(11):
        log.info(f"line {i}")
    captured = capsys.readouterr()
    assert "Logging error" not in captured.err and "Traceback" not in captured.err
    notices = [line for line in captured.err.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "No space left on device" in notices[0], captured.err
    assert captured.out.count("line ") == 11  # stdout keeps every line
    assert (tmp_path / "train.log").read_text().endswith("first line\n")
    logging.getLogger(LOGGER_NAME).handlers.clear()


def test_the_log_file_is_never_opened_through_a_link(tmp_path):
    (tmp_path / "victim").write_text("precious\n")
    os.symlink(tmp_path / "victim", tmp_path / "train.log")
    with pytest.raises(UserInputError, match="train.log is a symbolic link"):
        setup_logger(str(tmp_path), is_main=True)
    assert (tmp_path / "victim").read_text() == "precious\n"


def test_an_output_folder_that_is_a_link_is_followed_as_the_user_chose(tmp_path):
    """Global.output_dir and export's --out may be links to another disk (issue 35.9: decided and
    documented): the run's files go into the target, and links inside it are still refused."""
    disk = tmp_path / "other_disk"
    (disk / "run").mkdir(parents=True)
    (disk / "export").mkdir()
    os.symlink(disk / "run", tmp_path / "run")
    os.symlink(disk / "export", tmp_path / "export")
    train_ok(*QUICK, "-o", f"Global.output_dir={tmp_path / 'run'}")
    assert (disk / "run" / "best.pdparams").is_file() and (disk / "run" / "train.log").is_file()
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Global.output_dir={tmp_path / 'run'}",
                   "--out", tmp_path / "export")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (disk / "export" / "inference.pdiparams").is_file() and (tmp_path / "export").is_symlink()
    os.remove(disk / "run" / "train.log")
    os.symlink(tmp_path / "victim", disk / "run" / "train.log")
    line = one_error_line(run_tool("tools/train.py", *QUICK, "-o", f"Global.output_dir={tmp_path / 'run'}",
                                   "-o", "Global.max_steps=4"))
    assert "is a symbolic link; refusing to write through it" in line and not (tmp_path / "victim").exists()
