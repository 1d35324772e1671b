"""`vmae bench memory`: the configs it measures are the workflow's (paper.yaml's micro-batches and
ViT-B, each mask ratio its studies use), and its steps run through the training loop; the peak is
read on CUDA only (``scripts/bench_gpu.sh`` runs it on the GPU machine)."""

from __future__ import annotations

import json

from vmae.bench import memory
from vmae.cli import main as vmae
from vmae.config import ModelConfig, config_from_dict
from vmae.models import build_encoder
from vmae.recipes import load_workflow_config
from vmae.train.distributed import DistEnv, accumulation_steps

PAPER_RATIOS = [0.5, 0.75, 0.875, 0.9, 0.95]  # mask_ratio study, UCF101/HMDB51, frame masking, the rest


def test_paper_configs_are_the_recipes_micro_batches_on_vit_b():
    config = load_workflow_config(memory.PAPER_CONFIG)
    assert memory.pretrain_mask_ratios(config) == PAPER_RATIOS
    found = memory.measurements(config, "k400", list(memory.RECIPES), [0.9, 0.5], "cuda")
    assert [(m.name, m.config.mask_ratio if m.name.startswith("videomae") else None) for m in found] == [
        ("mocov3", None), ("videomae", 0.9), ("videomae", 0.5), ("videomaev2", 0.9), ("videomaev2", 0.5),
        ("finetune", None)]  # every registered method, sorted, a masked one at each ratio
    for m in found:
        cfg = m.config
        assert (cfg.model.size, cfg.model.img_size, cfg.model.num_frames, cfg.model.tubelet_size) == (
            "vit_base", 224, 16, 2)
        assert cfg.device == "cuda" and cfg.compile and cfg.optim.epochs == 1 and cfg.optim.warmup_epochs == 0
    # one GPU holds the micro-batch and accumulates the recipe's global batch: K400's official 2048
    # (VideoMAE, VideoMAE V2) and 512 (fine-tuning) videos in 64 and 32 micro-steps, MoCo v3's 256 in 8
    assert [accumulation_steps(m.config.optim.batch_size, m.config.optim.micro_batch_size, DistEnv())
            for m in found] == [8, 64, 64, 64, 64, 32]
    moco, videomae, *_, finetune = found
    assert (videomae.config.optim.micro_batch_size, videomae.config.optim.batch_size, memory.clips_a_video(videomae)
            ) == (32, 2048, 1)
    assert (moco.config.method, moco.config.optim.micro_batch_size, memory.clips_a_video(moco)) == ("mocov3", 32, 2)
    assert moco.config.moco.hidden_dim == 4096
    assert (finetune.config.optim.micro_batch_size, memory.clips_a_video(finetune), finetune.num_classes) == (16, 1, 400)
    assert finetune.config.mixup == 0.8 and finetune.config.model.drop_path_rate == 0.1
    eager = memory.measurements(config, "k400", ["finetune"], [], "cuda", compile_model=False)
    assert not eager[0].config.compile


def test_a_rehearsal_run_gives_a_row_per_setting_without_a_peak_on_cpu(capsys):
    """rehearsal.yaml: paper.yaml's recipes with a 64-token model (4 time slots x 4 x 4) and
    micro-batches of 2 videos of 4."""
    assert vmae(["bench", "memory", "--config", "workflow/config/rehearsal.yaml", "--device", "cpu", "--steps", "1",
                 "--mask-ratios", "0.5", "0.9"]) == 0
    result = json.loads(capsys.readouterr().out)  # stdout is the JSON alone (the loop's lines go to stderr)
    assert (result["device"], result["dataset"], result["model"]["size"]) == ("cpu", "ucf101", "vit_micro")
    rows = {(row["recipe"], row["mask_ratio"]): row for row in result["rows"]}
    assert list(rows) == [("mocov3", None), ("videomae", 0.5), ("videomae", 0.9), ("videomaev2", 0.5),
                          ("videomaev2", 0.9), ("finetune", None)]
    assert rows["videomae", 0.5]["visible_tokens"] == 32 and rows["videomae", 0.9]["visible_tokens"] == 8
    # MoCo v3's two views and fine-tuning's 2 repeated clips make 4 clips of a micro-batch of 2 videos
    assert [row["clips_a_micro_step"] for row in rows.values()] == [4, 2, 2, 2, 2, 4]
    assert rows["videomaev2", 0.5]["visible_tokens"] == 32 and rows["videomaev2", 0.9]["visible_tokens"] == 8
    for row in rows.values():
        assert (row["micro_batch_videos"], row["accumulation_steps"], row["optimiser_steps"]) == (2, 2, 1)
        assert (row["dtype"], row["compile"], row["allocated_at_start_gib"], row["peak_allocated_gib"],
                row["peak_reserved_gib"]) == ("fp32", False, None, None, None)
        assert 0 < row["final_loss"] < 20 and row["parameters"] > 0
    model = config_from_dict(ModelConfig, result["model"])
    assert rows["finetune", None]["parameters"] == sum(p.numel() for p in build_encoder(model, 101).parameters())
