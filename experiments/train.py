"""Train one configuration: `python experiments/train.py experiment=cifar10_lookahead seed=1`.

Any config field can be overridden (`lookahead.k=10 optimizer.lr=0.2 trainer.max_epochs=3`);
`--multirun` sweeps (`seed=1,2,3`); `torchrun --nproc_per_node=N experiments/train.py ...` trains on N
devices; `-m hydra/launcher=slurm ...` submits to a SLURM cluster. Re-running the same command resumes
the run from its checkpoint.
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "training")

import signal
import sys
from pathlib import Path
from typing import NoReturn


def stopped() -> NoReturn:
    """Ctrl-C outside a run's training loop (loading torch, composing, a multirun job being built; the
    loop has its own handler, which checkpoints and says so): one line and exit 130, not a traceback."""
    print(
        "stopped by signal SIGINT: finished runs are kept; the same command resumes or starts the rest",
        file=sys.stderr,
        flush=True,
    )
    sys.exit(128 + signal.SIGINT)


try:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, open_dict

    from lookahead.cli import hydra_errors_in_one_line, register_resolvers, user_errors_exit
except KeyboardInterrupt:
    stopped()

register_resolvers()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@user_errors_exit
def main(cfg: DictConfig) -> float | None:
    from lookahead.presets import own_group_values
    from lookahead.train.distributed import init_distributed, shutdown
    from lookahead.train.run_dir import run_key, run_path
    from lookahead.train.schema import validate
    from lookahead.train.trainer import train

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    cfg = own_group_values(cfg, overrides)  # `experiment=... optimizer=adamw`: AdamW's own values
    # `hydra.run.dir=...` on the command line names the run directory itself; otherwise it is derived
    # from the validated config and the overrides' key.
    explicit = any(o.startswith("hydra.run.dir=") for o in hydra_cfg.overrides.hydra)
    with open_dict(cfg):
        cfg.run_name = Path(hydra_cfg.run.dir).parent.name if explicit else run_key(overrides)
        cfg.overrides = overrides
    config = validate(cfg)  # once, before anything else: every bad value is one line naming its field
    path = (
        Path(hydra_cfg.run.dir)
        if explicit
        else run_path(config.paths.runs, config.experiment_name, overrides, config.seed)
    )
    ranks, device = init_distributed(config.device, config.trainer.dist_timeout_s)
    try:
        summary = train(config, path, ranks, device)
    finally:
        shutdown()
    return summary.final.get(summary.target) if summary.target else None


if __name__ == "__main__":
    hydra_errors_in_one_line()
    try:
        from lookahead.train.distributed import run_rank

        run_rank(main)  # a rank of a multi-process job ends without the C++ teardown (run_rank says why)
    except KeyboardInterrupt:  # before the loop, or a second Ctrl-C inside it (the run is recorded)
        stopped()
