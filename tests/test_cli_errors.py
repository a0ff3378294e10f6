"""Every exception user input can cause reaches the CLI as one message and exit 2 (--debug: traceback)."""

from __future__ import annotations

import pytest

from textransfer import cli


def _raising(exc: BaseException):
    def handler(args):
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "code", "fragment"),
    [
        (ValueError("bad value in x.yaml"), 2, "bad value in x.yaml"),
        (PermissionError(13, "Permission denied", "/data/out.csv"), 2, "Permission denied: /data/out.csv (check"),
        (IsADirectoryError(21, "Is a directory", "/data"), 2, "pass a file path, not a folder"),
        (NotADirectoryError(20, "Not a directory", "/data/f/x"), 2, "a parent of this path is a file"),
        (FileExistsError(17, "File exists", "/data/x"), 2, "move the existing file away"),
        (ZeroDivisionError("division by zero"), 1, "unexpected ZeroDivisionError"),
    ],
)
def test_errors_are_one_line_with_exit_code(monkeypatch, capsys, exc, code, fragment):
    monkeypatch.setattr(cli, "_cmd_list", _raising(exc))
    assert cli.main(["list", "encoders"]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_safetensors_errors_count_as_user_errors(monkeypatch, capsys):
    from safetensors import SafetensorError

    monkeypatch.setattr(cli, "_cmd_list", _raising(SafetensorError("Error while deserializing header")))
    assert cli.main(["list", "encoders"]) == 2
    assert "deserializing header" in capsys.readouterr().err


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(cli, "_cmd_list", _raising(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        cli.main(["--debug", "list", "encoders"])


def test_interrupt_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_list", _raising(KeyboardInterrupt()))
    assert cli.main(["list", "encoders"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_predict_texts_may_follow_options(monkeypatch, capsys):
    seen = {}

    def fake_predict(args):
        seen.update(texts=args.texts, batch_size=args.batch_size, proba=args.proba)
        return 0

    monkeypatch.setattr(cli, "_cmd_predict", fake_predict)
    assert cli.main(["predict", "model", "first", "--batch-size", "4", "--proba", "second", "third"]) == 0
    assert seen == {"texts": ["first", "second", "third"], "batch_size": 4, "proba": True}
    with pytest.raises(SystemExit) as exc:
        cli.main(["list", "encoders", "stray"])
    assert exc.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err
