"""`ia-world <command> [key=value ...]`: thin entry points over the Hydra configs in configs/."""

from __future__ import annotations

import importlib
import sys

from ia_world.errors import IAWorldError

# command -> "module:function"; each function takes the composed DictConfig.
COMMANDS = {
    "generate": "ia_world.data.generator:run",
    "pretrain": "ia_world.training:run",
    "evaluate": "ia_world.eval.evaluate:run",
    "report": "ia_world.report:run",
    "solve": "agents.solve:run",
    "world_model": "agents.latent_agent:run",
    "surprise": "agents.surprise:run",
    "rl": "agents.rl:run",
    "demo": "ia_world.demo:run",
    "verify": "ia_world.data.verify:run",
}

USAGE = "usage: ia-world {" + ",".join(COMMANDS) + "} [key=value ...]  (Hydra overrides)"


def run_command(command: str, overrides: list[str]):
    """Compose the command's config with the overrides and run it; returns its result."""
    from ia_world.config import load_config

    module_name, function_name = COMMANDS[command].split(":")
    module = importlib.import_module(module_name)
    preprocess = getattr(module, "preprocess_overrides", None)
    if preprocess is not None:
        overrides = preprocess(overrides)
    cfg = load_config(command, overrides)
    return getattr(module, function_name)(cfg)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, overrides = args[0], args[1:]
    if command not in COMMANDS:
        print(f"ia-world: error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        run_command(command, overrides)
    except IAWorldError as error:
        print(f"ia-world {command}: error: {error}", file=sys.stderr)
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
