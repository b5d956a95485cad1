"""Train one configuration: `python experiments/train.py experiment=cifar10_lookahead seed=1`.

Any config field can be overridden (`lookahead.k=10 optimizer.lr=0.2 trainer.max_epochs=3`);
`--multirun` sweeps (`seed=1,2,3`). Re-running the same command resumes the run from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from lookahead.cli import register_resolvers, user_errors_exit

register_resolvers()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@user_errors_exit
def main(cfg: DictConfig) -> float | None:
    from lookahead.train.trainer import train

    hydra_cfg = HydraConfig.get()
    run_path = Path(hydra_cfg.runtime.output_dir)
    with open_dict(cfg):
        cfg.run_name = run_path.parent.name
        cfg.overrides = list(hydra_cfg.overrides.task)
    summary = train(cfg, run_path)
    return (summary.get("final") or {}).get("test_accuracy")


if __name__ == "__main__":
    main()
