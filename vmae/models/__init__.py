"""Models of the study: the video ViT encoder, VideoMAE and MoCo v3, built from typed configs
(a method's own model is built by its module, vmae.methods)."""

from __future__ import annotations

from vmae.config import ConfigError, ModelConfig
from vmae.models.mae import VideoMAE
from vmae.models.moco import MoCoV3
from vmae.models.vit import MODEL_SIZES, EncoderConfig, VideoViT


def size_preset(cfg: ModelConfig) -> dict[str, int]:
    """embed_dim / depth / num_heads of ``cfg.size``; unknown names are a ConfigError."""
    if cfg.size not in MODEL_SIZES:
        raise ConfigError(f"model.size={cfg.size!r}: expected one of {sorted(MODEL_SIZES)}")
    return MODEL_SIZES[cfg.size]


def encoder_config(cfg: ModelConfig) -> EncoderConfig:
    """The encoder architecture of ``cfg``: its sizes, with width / depth / heads from ``cfg.size``."""
    return EncoderConfig(
        img_size=cfg.img_size, patch_size=cfg.patch_size, num_frames=cfg.num_frames,
        tubelet_size=cfg.tubelet_size, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
        init_values=cfg.init_values, drop_path_rate=cfg.drop_path_rate, head_drop_rate=cfg.head_drop_rate,
        linear_init=cfg.linear_init, **size_preset(cfg),
    )


def build_encoder(cfg: ModelConfig, num_classes: int = 0) -> VideoViT:
    """A mean-pooling ``VideoViT`` (fine-tuning, probing, MoCo backbone); no head when num_classes=0."""
    return VideoViT(encoder_config(cfg), num_classes=num_classes, use_mean_pooling=True)


def build_videomae(cfg: ModelConfig) -> VideoMAE:
    """The VideoMAE pretraining model of ``cfg`` (decoder width / depth / heads from it)."""
    return VideoMAE(encoder_config(cfg), cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads)


__all__ = ["MODEL_SIZES", "EncoderConfig", "MoCoV3", "VideoMAE", "VideoViT", "build_encoder", "build_videomae",
           "encoder_config"]
