"""VideoMAE pretraining (tubelet ViT, tube masking 0.9): one cascade generation.

``python -m whatnext.ssl.pretrain_videomae --data DATA --arch NAME --img-size PX [--init-encoder PREV.pt]
--out ENC.pt --metrics M.json [training flags]``; see :mod:`whatnext.ssl.cascade`.
"""

from whatnext.ssl.cascade import ssl_command

main = ssl_command("videomae")

if __name__ == "__main__":
    main()
