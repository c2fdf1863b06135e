"""`offramp emulator tiktok`: serve the local emulator of TikTok's Business API (docs/emulator.md).

Contributed to the CLI by this plugin (``EMULATOR`` in this package). The emulator (Starlette, uvicorn) is imported
inside the command, so `offramp plugins list` and every other command never import the web stack.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from offramp.core import ConfigError, OfframpError

if TYPE_CHECKING:
    from offramp.plugins.tiktok.emulator import EmulatorConfig

# The port `offramp demo` points its TikTok credential at.
DEFAULT_PORT = 9321

app = typer.Typer(
    help="Local emulators of vendor APIs, for tests, demos and benchmarks (nothing is sent to the vendor).",
    no_args_is_help=True,
)


def _pairs(option: str, values: list[str], example: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(f"{option} takes {example}, not {value!r}", hint=f"for example {option} {example}")
        pairs.append((key.strip(), rest.strip()))
    return pairs


def _number(option: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not a number", hint="see offramp emulator tiktok --help") from None


def _fault_options(
    token_ttl: int | None,
    qps: float | None,
    fail: list[str],
    http_502: float | None,
    http_503: float | None,
    latency_ms: int | None,
    jitter_ms: int | None,
    slow: str | None,
    poison: list[str],
    seed_random: int | None,
) -> dict[str, Any]:
    """The `Faults` fields the command line sets (the others keep the --config file's values)."""
    given: dict[str, Any] = {
        "access_token_ttl": token_ttl,
        "qps": qps,
        "http_502": http_502,
        "http_503": http_503,
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
        "random_seed": seed_random,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if fail:
        changes["fail"] = {
            _number("--fail", code, int): _number("--fail", fraction, float)
            for code, fraction in _pairs("--fail", fail, "CODE=FRACTION (e.g. 50000=0.1)")
        }
    if slow is not None:
        ((fraction, ms),) = _pairs("--slow", [slow], "FRACTION=MS (e.g. 0.01=2000)")
        changes["slow_fraction"] = _number("--slow", fraction, float)
        changes["slow_ms"] = _number("--slow", ms, int)
    if poison:
        changes["poison"] = dict(_pairs("--poison", poison, "FIELD=VALUE (e.g. event_id=order-13)"))
    return changes


def _build_config(
    config_file: Path | None, state: Path | None, no_refresh_tokens: bool, fault_changes: dict[str, Any]
) -> EmulatorConfig:
    from pydantic import ValidationError

    from offramp.plugins.tiktok.emulator import EmulatorConfig, Faults
    from offramp.plugins.tiktok.emulator.config import load_config
    from offramp.plugins.tiktok.emulator.seed import load_seed

    config = load_config(config_file) if config_file is not None else EmulatorConfig()
    updates: dict[str, Any] = {}
    if state is not None:
        updates["seed"] = load_seed(state)
    if no_refresh_tokens:
        updates["refresh_tokens"] = False
    try:
        updates["faults"] = Faults.model_validate({**config.faults.model_dump(), **fault_changes})
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid fault options: {details}", hint="see offramp emulator tiktok --help") from None
    return config.model_copy(update=updates)


@app.command("tiktok")
def tiktok(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")] = DEFAULT_PORT,
    state: Annotated[
        Path | None,
        typer.Option("--state", metavar="FILE", help="Seed file (apps, advertisers, users, event sets, auth codes)."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="Whole emulator config (seed, switches, faults), YAML/JSON."),
    ] = None,
    no_refresh_tokens: Annotated[
        bool,
        typer.Option(
            "--no-refresh-tokens", help="Long-term access tokens, as TikTok documents; refresh answers 40008."
        ),
    ] = False,
    token_ttl: Annotated[
        int | None,
        typer.Option("--token-ttl", metavar="SECONDS", min=0, help="Access tokens expire this long after issue."),
    ] = None,
    qps: Annotated[
        float | None, typer.Option("--qps", metavar="N", min=0.001, help="Requests per second; more answer 40100.")
    ] = None,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            "--fail", metavar="CODE=FRACTION", help="Answer this fraction with the code (40100, 50000, 50002...)."
        ),
    ] = None,
    http_502: Annotated[
        float | None, typer.Option("--http-502", metavar="F", min=0, max=1, help="Fraction answered HTTP 502.")
    ] = None,
    http_503: Annotated[
        float | None, typer.Option("--http-503", metavar="F", min=0, max=1, help="Fraction answered HTTP 503.")
    ] = None,
    latency_ms: Annotated[
        int | None, typer.Option("--latency-ms", metavar="N", min=0, help="Delay every answer by N ms.")
    ] = None,
    jitter_ms: Annotated[
        int | None, typer.Option("--jitter-ms", metavar="N", min=0, help="Add a random 0..N ms delay.")
    ] = None,
    slow: Annotated[
        str | None, typer.Option("--slow", metavar="FRACTION=MS", help="Delay this fraction of answers by MS.")
    ] = None,
    poison: Annotated[
        list[str] | None,
        typer.Option("--poison", metavar="FIELD=VALUE", help="An event whose FIELD equals VALUE fails its batch."),
    ] = None,
    seed_random: Annotated[
        int | None, typer.Option("--seed-random", metavar="N", help="Seed of the faults' random draws.")
    ] = None,
) -> None:
    """Serve the TikTok Business API emulator until Ctrl-C. Faults apply to event/track/ unless --config says more."""
    from offramp.plugins.tiktok.emulator.server import serve_forever

    fault_changes = _fault_options(
        token_ttl, qps, fail or [], http_502, http_503, latency_ms, jitter_ms, slow, poison or [], seed_random
    )
    config = _build_config(config_file, state, no_refresh_tokens, fault_changes)
    where = f"seed from {state}" if state is not None else "seed ids, users and auth codes: docs/emulator.md"

    def announce(base_url: str) -> None:
        # One line, flushed at once: start_emulator_process reads the URL from it. No secrets or tokens here.
        sys.stdout.write(f"offramp emulator: TikTok Business API at {base_url} ({where})\n")
        sys.stdout.flush()

    try:
        serve_forever(config, host, port, announce)
    except OSError as exc:
        raise OfframpError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port, or --port 0 for a free one",
        ) from None


__all__ = ["DEFAULT_PORT", "app"]
