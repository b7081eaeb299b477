"""The diagnostics' command line: one subcommand per diagnostic, one-line errors with exit code 2."""

import argparse
import sys
import time


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"error: {message}; see python -m diagnostics --help", file=sys.stderr)
        sys.exit(2)


def _mnist_train():
    import torch

    from workloads.mnist import data  # the harness's offline MNIST (`make data`)

    arrays = data.load()
    return torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])


def kron_quality(args) -> dict[str, str]:
    from diagnostics import kron_quality as kq

    cfg = kq.QUICK if args.quick else kq.KronQualityConfig(seed=args.seed)
    return kq.run(cfg, *_mnist_train(), args.output_dir)


def fp32_robustness(args) -> dict[str, str]:
    from dataclasses import replace

    from diagnostics import fp32

    cfg = fp32.QUICK if args.quick else fp32.Fp32Config()
    if args.size is not None:
        cfg = replace(cfg, size=args.size)
    if args.condition is not None:
        cfg = replace(cfg, factor_condition=args.condition)
    return fp32.run(replace(cfg, seed=args.seed), args.output_dir)


def refresh_stats(args) -> dict[str, str]:
    from dataclasses import replace

    from diagnostics import refresh

    cfg = refresh.QUICK if args.quick else refresh.RefreshConfig()
    return refresh.run(replace(cfg, seed=args.seed), *_mnist_train(), args.output_dir)


COMMANDS = {
    "kron-quality": (kron_quality, "cosine of Kronecker approximations to each small layer's exact H, over training"),
    "refresh-stats": (refresh_stats, "EShampoo and SOAP on MNIST: refreshes per factor and time to target per tau"),
    "fp32-robustness": (
        fp32_robustness,
        "fp32 inverse roots vs inverse-free roots; optimizers on an ill-conditioned quadratic",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog="python -m diagnostics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--output_dir", required=True, help="where the CSV and PNG are written")
        p.add_argument("--quick", action="store_true", help="a reduced run (under a minute here)")
        p.add_argument("--seed", type=int, default=0)
        if name == "fp32-robustness":
            p.add_argument("--size", type=int, help="the quadratic's W is size x size (default 64; quick 16)")
            p.add_argument("--condition", type=float, help="condition number of each quadratic factor (1e4)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        paths = COMMANDS[args.command][0](args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"{args.command} took {time.monotonic() - start:.1f} s")
