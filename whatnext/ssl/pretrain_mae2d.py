"""MAE-2D pretraining (per-frame ViT, random masking 0.75 per frame): one cascade generation.

``python -m whatnext.ssl.pretrain_mae2d --data DATA --arch NAME --img-size PX [--init-encoder PREV.pt]
--out ENC.pt --metrics M.json [training flags]``; see :mod:`whatnext.ssl.cascade`.
"""

from whatnext.ssl.cascade import ssl_command

main = ssl_command("mae2d")

if __name__ == "__main__":
    main()
