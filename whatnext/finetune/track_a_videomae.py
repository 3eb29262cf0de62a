"""``python -m whatnext.finetune.track_a_videomae``: finetune a tubelet (VideoMAE) SSL encoder with any head.

The cascade's track: ``--encoder-ckpt`` holds a ``videomae`` encoder generation, ``--pseudo CSV`` adds
the pseudo-labelled test clips of a distillation round to the labelled training clips (the union of
:mod:`whatnext.finetune.training_sets`). Shared recipe and outputs: :mod:`whatnext.finetune.driver`.
"""

from whatnext.finetune.driver import ssl_track_command

main = ssl_track_command("track_a_videomae", "videomae", "Finetune a tubelet (VideoMAE) encoder")

if __name__ == "__main__":
    main()
