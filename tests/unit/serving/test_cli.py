"""`python -m serving`: its flags, and every refusal before a port is bound."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from serving.__main__ import main, parser
from tests.conftest import REPO_ROOT


@pytest.fixture(autouse=True)
def _repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(REPO_ROOT)
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("FRAUDOPS_")]:
        del os.environ[name]
    yield
    os.environ.clear()  # main() exports the flags for its workers
    os.environ.update(saved)


def test_the_flags() -> None:
    args = parser().parse_args(["--host", "::1", "--port", "9000", "--workers", "3"])
    assert (args.host, args.port, args.workers, args.config) == ("::1", 9000, 3, None)


def test_an_unknown_flag_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--prot", "9000"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --prot" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--port", "99999"], "server.port"),
        (["--workers", "0"], "server.workers"),
        (["--host", "0.0.0.0"], "server.allow_remote"),
        (["--config", "configs/nothing-here.yaml"], "configs/nothing-here.yaml"),
    ],
)
def test_a_bad_value_stops_it_before_it_binds(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert named in err
    assert err.count("\n") == 1


def test_a_port_in_use_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert f"error: 127.0.0.1:{port}: the address is in use" in capsys.readouterr().err
