"""The `treasury` command line (also `ape treasury`): a thin layer over the library.

This module must stay import-light: `treasury --help` imports only click. Every command lives in a
module under `treasury.cli` and is imported the first time click asks for it: the store-only
commands (list, show, export, import, log: treasury.cli.records) import neither ape nor web3 unless given
--network; the others (treasury.cli.chain's ChainCommand) may import ape, web3 and the library freely. The `deploy`, `create_safe` and `deploy_guard` commands
stay importable from here (`from treasury.cli import deploy`) for the ape scripts under scripts/.
"""

from __future__ import annotations

import importlib

import click

# name -> ("module:attribute", one-line help shown by `treasury --help` without importing anything)
COMMANDS: dict[str, tuple[str, str]] = {
    "deploy": ("treasury.cli.setup:deploy", "Deploy the Safe contracts at their canonical addresses"),
    "create-safe": ("treasury.cli.setup:create_safe", "Create an M-of-N Safe at a predicted address"),
    "deploy-guard": ("treasury.cli.setup:deploy_guard", "Deploy TreasuryGuard from a treasury's policy and install it"),
    "propose": ("treasury.cli.proposals:propose", "Propose a transfer, a call or an owner/threshold change"),
    "list": ("treasury.cli.records:list_proposals", "List a treasury's proposals (no chain needed)"),
    "show": ("treasury.cli.records:show", "Show a proposal: decoded intent, hashes, signatures (--network: the verdict)"),
    "sign": ("treasury.cli.proposals:sign", "Sign a proposal with an ape account, after checking what it does"),
    "review": ("treasury.cli.review:review", "Review a proposal before signing: unusual recipients, amounts, calls (exit 0)"),
    "export": ("treasury.cli.records:export", "Write a proposal and its signatures to a bundle file"),
    "import": ("treasury.cli.records:import_bundle", "Take in a bundle file: its proposal and signatures (no chain needed)"),
    "schedule": ("treasury.cli.proposals:schedule", "Queue a proposal the policy holds for the delay"),
    "execute": ("treasury.cli.proposals:execute", "Simulate, then execute a fully signed proposal"),
    "rehearse": ("treasury.cli.rehearsal:rehearse", "Execute a proposal on a fork of the current block and report"),
    "reconcile": ("treasury.cli.rehearsal:reconcile", "Record executions and used nonces the store has missed"),
    "reject": ("treasury.cli.proposals:reject", "Propose the no-op that spends a proposal's nonce"),
    "drop": ("treasury.cli.proposals:drop", "Drop a pending proposal (unused nonce) or a draft locally, no transaction"),
    "policy": ("treasury.cli.policy:policy", "Show the configured policy, or check it against the guard"),
    "log": ("treasury.cli.records:log", "Show the audit log and verify its hash chain"),
    "info": ("treasury.cli.info:info", "Show the Safe, its guard, balances, budgets left and the delay queue"),
    "cancel": ("treasury.cli.proposals:cancel", "Cancel a scheduled proposal's queue entry with owner signatures"),
    "init": ("treasury.cli.init:init", "Write a commented `treasury:` config for a Safe"),
    "sync": ("treasury.cli.sync:sync", "Push proposals to, or pull them from, a Safe Transaction Service"),
    "serve": ("treasury.cli.serve:serve", "Serve the Safe Transaction Service API over the store"),
    "history": ("treasury.cli.history:history", "Executed transactions for accounting: CSV or JSON, by date and token"),
    "dev-token": ("treasury.cli.devtoken:dev_token", "Deploy and mint a test ERC-20 on a development chain"),
    "drill": ("treasury.cli.drill:drill", "Recovery drill: every owner proves control of their key (nothing sent on chain)"),
    "setup-sheet": ("treasury.cli.setup_sheet:setup_sheet", "Write the setup record (Markdown, PDF, QR), or --check it is current"),
    "smoke-test": ("treasury.cli.smoke_test:smoke_test", "Send a small amount in and back out, signed by every owner"),
}

# Names the ape scripts import from this module, built on first access (PEP 562).
_EXPORTS = {"deploy": "deploy", "create_safe": "create-safe", "deploy_guard": "deploy-guard"}

EPILOG = """\b
Typical flow:
  treasury propose transfer 0xRecipient "250 USDC" --treasury ops
  treasury sign 1a2b3c --account alice --treasury ops
  treasury execute 1a2b3c --account bob --treasury ops

\b
Every command takes --help. Commands that touch the chain take --network
(e.g. ethereum:local:foundry); accounts are ape aliases (`ape accounts list`).

\b
Exit codes:
  0  done
  1  refused: bad input, unknown proposal, failed check (one line on stderr)
  2  usage error: unknown command or option, missing argument
  3  the policy or the guard refuses (deny, needs the delay, config drift)
"""


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(click.Group):
    """A click group whose commands are imported only when they are run (or asked for --help)."""

    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands:
            return _load(self.lazy_commands[name][0])
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the stored help lines: `--help` imports no command module."""
        rows = [(name, self.lazy_commands[name][1]) for name in sorted(self.lazy_commands)]
        rows += [(name, cmd.get_short_help_str(80)) for name, cmd in self.commands.items() if name not in self.lazy_commands]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(name="treasury", cls=LazyGroup, lazy_commands=COMMANDS, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ape-treasury", prog_name="treasury")
def cli():
    """Run a multisig treasury on a Safe: deploy, propose, check policy, sign, schedule, execute.

    Treasuries are named in the `treasury:` section of the ape project's ape-config.yaml
    (or of the file given with --config). Every command prints tables for people and, with
    --json, stable JSON for scripts.
    """
    from treasury.chain.toolchain import activate

    activate()  # the project's pinned anvil and solc, when run from a plain shell


def __getattr__(name: str) -> click.Command:
    if name in _EXPORTS:
        return _load(COMMANDS[_EXPORTS[name]][0])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
