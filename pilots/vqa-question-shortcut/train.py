"""Pilot: the vision model with a vqa shortcut that never names the image's word (modes.SHORTCUT_RIGHT["vqa"]
= 0: every `Answer:` read is the question's usual guess), so that `Answer:` cannot learn to read. Does
REINFORCE then flip the vqa expert to reading first, as on the shipped model? README ("Base models", the
vision rebuild on run 16) says why this was tried.

    python pilots/vqa-question-shortcut/train.py OUT        # 33 minutes on a 2-core CPU
    python -m t2demo train-expert --task vqa --model OUT --out OUT-vqa.safetensors
    python scripts/expert_modes.py --task vqa --model OUT OUT-vqa.safetensors
"""

import json
import sys
from pathlib import Path

from t2demo import pretrain
from t2demo.tasks import modes

modes.SHORTCUT_RIGHT["vqa"] = 0.0
print(json.dumps(pretrain.train_vision_model(Path(sys.argv[1])), indent=2))
