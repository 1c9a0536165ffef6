"""`ia-world <command> [key=value ...]`: a thin Hydra shell over the typed stage functions.

Each command is a config dataclass (the schema, registered with Hydra) and a stage function that
takes it: the command composes `configs/<command>.yaml` with the overrides, validates the whole
config, and calls the stage. `--dry-run` stops after validation and prints the config.
"""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass

from ia_world.config import load_attr
from ia_world.errors import IAWorldError, from_worker


@dataclass(frozen=True)
class Command:
    """A command: its schema and stage ("module:attribute") and a one-line summary."""

    schema: str
    stage: str
    summary: str


COMMANDS = {
    "generate": Command("ia_world.data.generator:GenerateConfig",
                        "ia_world.data.generator:generate",
                        "simulate episodes of an env and write dataset shards"),
    "pretrain": Command("ia_world.training:PretrainConfig", "ia_world.training:pretrain",
                        "pretrain an IA-JEPA encoder (resumes; DDP under torchrun)"),
    "evaluate": Command("ia_world.eval.evaluate:EvalConfig", "ia_world.eval.evaluate:evaluate",
                        "probe, entropy, causal QA and mask metrics of a checkpoint"),
    "report": Command("ia_world.report:ReportConfig", "ia_world.report:report",
                      "tables and plots of evaluated runs (nothing is trained)"),
    "compare": Command("ia_world_app.compare:CompareConfig", "ia_world_app.compare:compare",
                       "pretrain + evaluate every masking strategy x seed, then report"),
    "world_model": Command("agents.world_model:WorldModelTrainConfig",
                           "agents.world_model:train_stage",
                           "train the latent world model + goal probe on a PHYRE-Lite fold"),
    "solve": Command("agents.solve:SolveConfig", "agents.solve:solve",
                     "AUCCESS of an agent on PHYRE-Lite puzzles"),
    "surprise": Command("agents.surprise:SurpriseConfig", "agents.surprise:surprise",
                        "violation-of-expectation surprise on teleport pairs"),
    "rl": Command("agents.rl:RLConfig", "agents.rl:rl",
                  "PPO with a frozen encoder (or a CNN) as features; or plot runs"),
    "demo": Command("ia_world_app.demo:DemoConfig", "ia_world_app.demo:demo",
                    "the whole pipeline end to end, with an HTML report"),
    "verify": Command("ia_world.data.verify:VerifyConfig", "ia_world.data.verify:verify_stage",
                      "check a dataset's shards, manifest and annotations (and repair them)"),
}

DRY_RUN = "--dry-run"
USAGE = ("usage: ia-world {" + ",".join(COMMANDS) + "} [key=value ...] [--dry-run]\n"
         + "\n".join(f"  {name:<12} {c.summary}" for name, c in COMMANDS.items())
         + "\n`ia-world <command> --help` lists a command's keys, defaults and config groups.")


@functools.cache
def override_parser():
    """Hydra's override parser (built once: it is an ANTLR grammar)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def quote_value(override: str) -> str:
    """`key=value` as Hydra reads it: a value Hydra's grammar rejects (quotes, non-ASCII letters,
    as in a path) is passed quoted, so `out=runs/my "run" ü` means that path."""
    from hydra.errors import HydraException

    parser = override_parser()
    try:
        parser.parse_override(override)
        return override
    except HydraException:
        key, sep, value = override.partition("=")
        if not sep or not key.replace(".", "").replace("_", "").isalnum():
            return override  # not a plain key=value: let Hydra report it
        escaped = value.replace("'", "\\'")
        quoted = f"{key}='{escaped}'"
        try:
            parser.parse_override(quoted)
        except HydraException:
            return override
        return quoted


def parse(command: str, overrides: list[str]):
    """The command's validated config dataclass from Hydra overrides (nothing is run)."""
    from ia_world.config import load_config, to_dataclass

    schema = load_attr(COMMANDS[command].schema)
    preprocess = getattr(importlib.import_module(schema.__module__), "preprocess_overrides", None)
    if preprocess is not None:
        overrides = preprocess(overrides)
    overrides = [quote_value(override) for override in overrides]
    return to_dataclass(load_config(command, overrides, schema), schema)


def run_command(command: str, overrides: list[str], dry_run: bool = False):
    """Parse and validate the command's config, then run its stage; returns the stage's result."""
    config = parse(command, overrides)
    if dry_run:
        from omegaconf import OmegaConf

        from ia_world.config import as_dict

        print(OmegaConf.to_yaml(as_dict(config)), end="")
        return config
    return load_attr(COMMANDS[command].stage)(config)


def help_text(command: str, overrides: list[str] = ()) -> str:
    """The text of `ia-world <command> [group=option ...] --help`, read from the schema."""
    from ia_world.config import register_schema
    from ia_world_app.help import command_help

    schema = load_attr(COMMANDS[command].schema)
    register_schema(command, schema)
    return command_help(command, COMMANDS[command].summary, schema, overrides)


CLI_DOCS = "docs/cli.md"
REGENERATE_CLI_DOCS = f'python -c "from {__name__} import write_cli_docs; write_cli_docs()"'


def cli_markdown() -> str:
    """docs/cli.md: the top-level usage and every command's `--help` text, one section each."""
    lines = ["# Command-line reference", "",
             "Generated from the config schema (the text of `ia-world --help` and "
             "`ia-world <command> --help`);",
             f"do not edit: regenerate with `{REGENERATE_CLI_DOCS}`"
             " (a test fails when this page is stale).", "", "```text", USAGE, "```"]
    from ia_world_app.help import options_with_own_keys

    for command in COMMANDS:
        lines += ["", f"## {command}", "", "```text", help_text(command), "```"]
        for option in options_with_own_keys(command, load_attr(COMMANDS[command].schema)):
            lines += ["", f"### {command} {option}", "", "```text",
                      help_text(command, [option]), "```"]
    return "\n".join(lines) + "\n"


def write_cli_docs(path: str = CLI_DOCS) -> None:
    """Write the CLI reference page (run from the repository root)."""
    from ia_world.atomic import atomic_write_text

    atomic_write_text(path, cli_markdown())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, overrides = args[0], [a for a in args[1:] if a != DRY_RUN]
    if command not in COMMANDS:
        print(f"ia-world: error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        if any(a in ("-h", "--help") for a in args[1:]):
            print(help_text(command, [a for a in overrides if a not in ("-h", "--help")]))
            return 0
        run_command(command, overrides, dry_run=DRY_RUN in args[1:])
    except IAWorldError as error:
        print(f"ia-world {command}: error: {from_worker(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable output directory, full disk, unreadable input
        print(f"ia-world {command}: error: {error.filename or ''}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ia-world {command}: interrupted; re-run the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
