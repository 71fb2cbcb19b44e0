"""Continue the shipped text base with world-math's sum decision nearer even in the data.

    python pilots/two-skill-sum/continue.py SHARE STEPS LR OUT [SEED]

The run is `train-base text --init assets/t2demo-llama-tiny --steps STEPS --lr LR --seed SEED` (16 unless given:
another seed draws other examples in another order, a replicate of the same recipe), except that in
the world-math drill the sum is worked (`Work:`) with probability SHARE instead of math's 0.3 (the recall's
modes, every other task and drill, and the mixture are unchanged). Resumable as train-base is.
See README.md here for what it is for and what it found.
"""

import dataclasses
import sys
from pathlib import Path

import torch

from t2demo import pretrain
from t2demo.tasks import world_math
from t2demo.tasks.modes import RELIABLE_SHARE

share, steps, lr, out = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 16
torch.set_num_threads(2)
world_math.RELIABLE_SHARE = RELIABLE_SHARE | {"math": share}  # world_math's own name: only its sums change
cfg = dataclasses.replace(pretrain.TEXT_TRAIN, steps=steps, lr=lr, seed=seed)
print(pretrain.train_text_model(out, cfg, "cpu", pretrain.DEFAULT_TEXT_MODEL))
