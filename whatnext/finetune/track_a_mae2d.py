"""``python -m whatnext.finetune.track_a_mae2d``: finetune an MAE-2D SSL encoder with any temporal head.

The encoder (per-frame ViT with zero-initialised temporal attention) comes from an SSL checkpoint of
family ``mae2d`` (``--encoder-ckpt``); auxiliary losses ``--aux pair_direction`` / ``--aux consistency``,
label smoothing, layer-wise lr decay, drop path and the label-aware flip are shared with the other
tracks (:mod:`whatnext.finetune.driver`).
"""

from whatnext.finetune.driver import ssl_track_command

main = ssl_track_command("track_a_mae2d", "mae2d", "Finetune an MAE-2D encoder")

if __name__ == "__main__":
    main()
