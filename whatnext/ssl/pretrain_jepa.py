"""Video JEPA pretraining (a per-frame encoder, next-frame representation prediction with a VC regulariser):
one cascade generation.

``python -m whatnext.ssl.pretrain_jepa --data DATA --arch NAME --img-size PX [--init-encoder PREV.pt]
--out ENC.pt --metrics M.json [--context K --steps S --std-coeff A --cov-coeff B ...] [training flags]``;
see :mod:`whatnext.ssl.cascade` and :mod:`whatnext.ssl.jepa`.
"""

from whatnext.ssl.cascade import ssl_command

main = ssl_command("jepa")

if __name__ == "__main__":
    main()
