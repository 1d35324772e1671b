"""Training: the shared loop (loop.py), optimiser pieces (optim.py), checkpoints, DDP helpers, and the
entry points `vmae pretrain | finetune | linprobe | reconstruct` built on them."""
