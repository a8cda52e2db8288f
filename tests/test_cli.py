"""The `joyai-embodied` command line: subcommands, and one-line errors instead of tracebacks."""

import pytest

from joyai_embodied.cli import SUBCOMMANDS, main, positive_int


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 2
    listed = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in listed


def test_bad_input_exits_2_with_the_field_named(capsys):
    assert main(["sim-episode", "--width", "-5", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("joyai-embodied sim-episode: width: expected")
    assert "\n" not in err and "Traceback" not in err


def test_unknown_backend_names_the_choices(tmp_path, capsys):
    assert main(["demo", "--backend", "no-such-model", "--episodes", "1", "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "no-such-model" in err and "geometric" in err


@pytest.mark.parametrize("text", ["0", "-3", "two"])
def test_positive_int_refuses(text):
    with pytest.raises(Exception, match="positive integer"):
        positive_int(text)
