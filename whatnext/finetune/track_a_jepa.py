"""``python -m whatnext.finetune.track_a_jepa``: finetune a video-JEPA encoder with any temporal head.

The encoder comes from an SSL checkpoint of ``whatnext.ssl.pretrain_jepa`` (``--encoder-ckpt``): any per-frame
architecture of the registry (``conv2d_*``, timm 2D backbones, ``mae2d_*``), so the track accepts an encoder
checkpoint of any family. Heads, auxiliary losses, label smoothing and the label-aware flip are shared with the
other tracks (:mod:`whatnext.finetune.driver`); layer-wise lr decay and drop path are off by default (the
conv encoders have neither).
"""

from whatnext.finetune.driver import ssl_track_command

main = ssl_track_command("track_a_jepa", None, "Finetune a video-JEPA encoder", layer_decay=1.0, drop_path=0.0)

if __name__ == "__main__":
    main()
