"""python -m selfextend.tiny.train: every option is described and shows its default; a missing --base
checkpoint is a one-line error with exit code 2."""
from __future__ import annotations

import argparse

import pytest

from selfextend.tiny.train import build_parser, main


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", ["base", "passkey"])
def test_help_describes_every_option_with_its_default(name, capsys):
    parser = _subcommands()[name]
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # unwrap the help's line breaks
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings} has no description"
        described = " ".join(action.help.split())
        assert described in text
        if not action.required:
            assert f"{described} (default: {action.default})" in text, action.option_strings


def test_base_help_shows_the_committed_settings(capsys):
    with pytest.raises(SystemExit):
        main(["base", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("(default: 1000)", "(default: 24)", "(default: 0.003)", "(default: 128)", "(default: 4)"):
        assert expected in text


def test_missing_base_checkpoint_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["passkey", "--base", str(tmp_path / "none.pt"), "--out", str(tmp_path / "out.pt")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.strip().splitlines() == [
        f"python -m selfextend.tiny.train passkey: error: --base {tmp_path / 'none.pt'}: no such checkpoint file"]
