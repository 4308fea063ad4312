"""`neurod`: the Neuro network daemon.

    neurod --network devnet --datadir /tmp/n1 --mine

One `trio.run`; SIGINT/SIGTERM cancel the node's nursery and the store is closed cleanly.

Faults an operator can fix (a port taken, the data dir in use, a bad config, genesis or file in
the data dir, a damaged store) are raised as the typed errors of the layer that finds them and
turned into one line on stderr and exit status 1 here, at the boundary (`operator_fault`),
wherever they surface: before `trio.run` or from inside the node's nurseries. Anything else is a
bug: its traceback goes to the log file and stderr gets one line saying where.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("neuro.main")


class StartupError(Exception):
    """A fault `main` finds itself (e.g. `--check-db` found damage), already one line."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from neurod.version import version

    p = argparse.ArgumentParser(prog="neurod", description="Neuro network daemon")
    p.add_argument("--version", action="version", version=f"neurod {version()}")
    p.add_argument("--network", help="built-in network: main (default) or devnet")
    p.add_argument("--genesis", help="path to a custom genesis file")
    p.add_argument("--datadir", type=Path, help="data directory (default ~/.neuro/<network>)")
    p.add_argument("--listen", action="append", help="libp2p listen multiaddr (repeatable)")
    p.add_argument("--bootstrap", action="append", help="bootstrap peer multiaddr with /p2p/<id> (repeatable)")
    p.add_argument("--rpc-port", type=int, help="JSON-RPC port on 127.0.0.1 (0: any free port)")
    p.add_argument("--mine", action="store_true", default=None, help="mine blocks")
    p.add_argument("--miner-address", help="reward address (default: the node key's)")
    p.add_argument("--mining-processes", type=int)
    p.add_argument("--block-interval", type=float, help="min seconds between our blocks (devnet pacing)")
    p.add_argument("--status-interval", type=float, help="seconds between peer status polls")
    p.add_argument("--redial-interval", type=float)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.add_argument("--check-blocks", type=int, metavar="N", help="main-chain blocks verified at start (default 6)")
    p.add_argument("--reindex", action="store_true", help="rebuild the chain store from its intact blocks, then start")
    p.add_argument("--check-db", action="store_true", help="walk the whole chain store, report, and exit (0: ok)")
    market = p.add_argument_group("market agents")
    market.add_argument("--agent-key", help="the agents' account: a wallet key file, or devnet:<name> on a devnet")
    market.add_argument("--agent-password-file", help="password of the agent key file (else NEURO_AGENT_PASSWORD)")
    market.add_argument("--worker", action="store_true", default=None, help="sell compute: bid and run shards")
    market.add_argument("--worker-services", type=lambda v: v.split(","), help="comma list: generate,train,label")
    market.add_argument("--worker-floor-min", type=int, help="lowest price floor, base units per quote unit")
    market.add_argument("--worker-floor-max", type=int, help="highest price floor")
    market.add_argument("--worker-slots", type=int, help="shards run at once on the CPU")
    market.add_argument("--worker-devices", help="auto (a slot per CUDA GPU, else CPU slots) | cpu | cuda:0,cuda:1")
    market.add_argument("--worker-stake", help="NTK to keep bonded")
    market.add_argument("--worker-fault", help=argparse.SUPPRESS)  # devnet tests: a dishonest worker
    return p.parse_args(argv)


async def _serve(node: Any) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


# store faults that a reindex cannot mend: a lock, another network's store, another layout
NOT_REPAIRABLE = frozenset({"datadir-locked", "wrong-network", "store-format", "store-missing"})


def with_repair_hint(exc: Exception, args: argparse.Namespace) -> str:
    """A store fault in one line, with the command that repairs it where one does."""
    reason = getattr(exc, "reason", "")
    if reason in NOT_REPAIRABLE:
        return str(exc)
    command = ["neurod"] + (["--network", args.network] if args.network else [])
    command += (["--genesis", args.genesis] if args.genesis else []) + (["--datadir", str(args.datadir)] if args.datadir else [])
    return f"{exc}; the chain store is damaged: repair it with `{' '.join(command)} --reindex`"


def maintain_store(args: argparse.Namespace, config: Any) -> None:
    """`--reindex` then/or `--check-db`, with the data dir locked and before the node starts."""
    from chain.errors import StoreError
    from chain.genesis import load_genesis
    from neurod.repair import check_db, describe_check, reindex

    def say(line: str) -> None:
        print(f"neurod: {line}", file=sys.stderr, flush=True)

    genesis = load_genesis(config.genesis_source)
    try:
        if args.reindex:
            done = reindex(config.datadir, genesis, verify_workers=config.verify_workers, say=say)
            kept = f"; the damaged store is kept at {done.kept}" if done.kept else ""
            say(
                f"reindexed: {done.imported} blocks imported, tip {done.height} {done.tip[:16]}; dropped"
                f" {done.damaged} damaged, {done.orphaned} orphaned, {done.rejected} invalid{kept}"
            )
        if args.check_db:
            report = check_db(config.datadir, genesis, say)
            for line in describe_check(report):
                print(line, flush=True)
            if not report.ok:
                raise StartupError(f"check-db found {len(report.problems)} problem(s); repair with --reindex")
    except StoreError as exc:
        raise StartupError(str(exc)) from None


def with_devnet_genesis(config: Any) -> Any:
    """A devnet without `--genesis` runs on its own `<datadir>/genesis.json`, made at its first
    start with a fresh time (neurod/devnet_genesis.py), so that ASERT paces a plain `--mine`."""
    from dataclasses import replace

    from neurod.datadir import CHAIN_DIR
    from neurod.devnet_genesis import ensure_devnet_genesis

    if config.network != "devnet" or config.genesis is not None:
        return config
    chain = config.datadir / CHAIN_DIR
    path = ensure_devnet_genesis(config.datadir, has_chain=chain.is_dir() and any(chain.iterdir()))
    return config if path is None else replace(config, genesis=str(path))


def run(args: argparse.Namespace) -> None:
    import trio

    from chain import failpoints
    from chain.errors import ChainError, StoreError
    from neurod.config import default_datadir, load_config
    from neurod.datadir import LOG_FILE, check_keys, lock_datadir, prepare_datadir
    from neurod.logs import setup_logging

    failpoints.check_environment()
    network = args.network or "main"
    datadir = (args.datadir or default_datadir(network)).expanduser().resolve()
    prepare_datadir(datadir)
    overrides = {
        "network": args.network, "genesis": args.genesis, "listen": args.listen,
        "bootstrap": args.bootstrap, "rpc_port": args.rpc_port, "mine": args.mine,
        "miner_address": args.miner_address, "mining_processes": args.mining_processes,
        "block_interval": args.block_interval, "status_interval": args.status_interval,
        "redial_interval": args.redial_interval, "log_level": args.log_level, "log_format": args.log_format,
        "check_blocks": args.check_blocks, "agent_key": args.agent_key,
        "agent_password_file": args.agent_password_file, "worker": args.worker,
        "worker_services": args.worker_services, "worker_floor_min": args.worker_floor_min,
        "worker_floor_max": args.worker_floor_max, "worker_slots": args.worker_slots,
        "worker_stake": args.worker_stake, "worker_fault": args.worker_fault, "worker_devices": args.worker_devices,
    }
    config = load_config(datadir, overrides)
    setup_logging(config.log_level, config.log_format, datadir / LOG_FILE)
    lock_datadir(datadir)
    if args.reindex or args.check_db:
        maintain_store(args, with_devnet_genesis(config))
        if args.check_db:
            return
    check_keys(datadir)
    config = with_devnet_genesis(config)  # after the checks that can stop a start: a failed one writes nothing
    from neurod.node import Node

    try:
        node = Node(config)
    except StoreError as exc:
        raise StartupError(with_repair_hint(exc, args)) from None
    except ChainError as exc:
        raise StartupError(str(exc)) from None
    try:
        trio.run(_serve, node)
    finally:
        node.close()
    log.info("neurod stopped")


def operator_fault(exc: BaseException) -> str | None:
    """The one line for a fault the operator can fix, found however deep the node's nurseries
    wrapped it in exception groups; None for anything else (a bug)."""
    from chain.errors import ChainError
    from chain.failpoints import FailpointError
    from neurod.config import ConfigError
    from neurod.datadir import DataDirError
    from p2p.errors import P2PError

    if isinstance(exc, BaseExceptionGroup):
        return next((line for inner in exc.exceptions if (line := operator_fault(inner)) is not None), None)
    if isinstance(exc, StartupError | ConfigError | DataDirError | ChainError | P2PError | FailpointError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"port already in use ({exc})"
    if isinstance(exc, OSError) and exc.filename is not None:  # a file the checks could not foresee
        return str(DataDirError.from_os_error(Path(exc.filename), exc))
    return None


def crash_line(exc: BaseException) -> str:
    """A bug: its traceback goes to the log file, where an operator can send it to us, and the
    user gets one line pointing there. Before the log is open there is nowhere else to keep the
    traceback, so it is printed."""
    from neurod.datadir import LOG_FILE

    files = [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).name == LOG_FILE
    ]
    if not files:
        traceback.print_exception(exc)
        return f"unexpected {type(exc).__name__}: {exc}"
    record = log.makeRecord(
        log.name, logging.CRITICAL, __file__, 0, "neurod stopped by an unexpected error", (),
        (type(exc), exc, exc.__traceback__),
    )
    for handler in files:
        handler.handle(record)
    return f"unexpected {type(exc).__name__}: {exc} (the traceback is in {files[0].baseFilename})"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the boundary: every fault ends as one line
        line = operator_fault(exc)
        line = crash_line(exc) if line is None else line
        print("neurod: " + " ".join(line.splitlines()), file=sys.stderr)  # one line, whatever the message
        sys.exit(1)


if __name__ == "__main__":
    main()
