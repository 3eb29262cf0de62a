"""Masked-pretraining cost: visible-only encoding vs encoding every token, and paper-size compute.

Prints four tables:

1. CPU sizes (``mae2d_vit_tiny``, ``videomae_vit_tiny``): median wall time of one
   forward+backward step (encoder + decoder + masked loss) with the encoder on the visible tokens
   only, against the same step with the encoder on every token (decoder and loss unchanged), at
   mask ratios 0.75 and 0.9; and the same ratio for the encoder alone.
2. TATS (``masking: tats``, :mod:`whatnext.ssl.tats`) against random masking at the CPU sizes: median wall
   time of one training step (mask, forward, backward) with the family's random masking and with the TATS
   sampler past its warm-up at the paper's phase length (every step draws the mask from the sampler, records
   the episode and runs the sampler's PPO phase, 4 full-batch steps), their ratio, the draw and the phase
   alone, and the ratio of counted FLOPs; FLOP ratios also at two paper sizes (ViT-B/16, 4 x 224^2).
3. Paper sizes (MAE-2D ViT-B/16, tubelet ViT-S/16 and ViT-B/16, 4 x 224^2 clips): parameters and
   FLOPs per clip counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add = 2 FLOPs)
   for a pretraining step (fwd+bwd, visible-only, decoder included) and a finetuning step (fwd+bwd,
   all tokens, attentive-probe head).
4. GPU-hours per SSL generation and per finetune on A100 / H100 from those FLOPs at the stated
   utilisation of the bf16 dense peak.

Run: ``python bench/ssl_step.py`` (a few minutes on one CPU thread).
"""

from __future__ import annotations

import statistics
import time

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

from whatnext.models import build_model
from whatnext.ssl.mae_models import build_masked_autoencoder, gather_tokens
from whatnext.ssl.masking import reconstructed_indices, visible_indices
from whatnext.ssl.tats import DEFAULTS as TATS_DEFAULTS

SSL_CLIPS = 44_993 + 6_745 + 6_912  # train + val + test clips: SSL sees every frame, no label
FT_CLIPS = 44_993  # train clips (a train+val twin has 51,738)
PEAK_BF16_TFLOPS = {"A100": 312.0, "H100": 989.0}
PAPER = [("mae2d_vit_b16", 0.75), ("videomae_vit_s16", 0.9), ("videomae_vit_b16", 0.9)]


def ssl_step(model, x: torch.Tensor, mask: torch.Tensor, visible_only: bool, encoder_only: bool = False) -> None:
    """One forward+backward of the masked autoencoder with a fixed mask [B, T', N], through the model's own
    pieces. ``visible_only=False``: every token goes through the encoder and the latents are read at the
    visible positions, so the decoder, targets and loss are the same work in both variants."""
    encoder = model.encoder
    seq_mask = encoder.to_sequences(mask)
    ids_keep = visible_indices(seq_mask)
    patches = encoder.patch_sequences(x)
    if visible_only:
        latent = encoder.encode_patches(patches, ids_keep)
    else:
        latent = gather_tokens(encoder.encode_patches(patches), ids_keep)
    if encoder_only:
        latent.square().mean().backward()
        return
    ids_rec = reconstructed_indices(seq_mask, model.decoder_keep, torch.Generator().manual_seed(0))
    model.reconstruct(patches, latent, ids_keep, ids_rec)[0].backward()


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_timings(slow, fast, repeats: int) -> tuple[float, float, float]:
    """Median seconds of ``slow`` and ``fast`` and median of their per-repeat ratio fast/slow.

    The two run alternately so that load from other processes hits both alike.
    """
    slow(), fast()  # warm-up
    pairs = [(seconds(slow), seconds(fast)) for _ in range(repeats)]
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            statistics.median(p[1] / p[0] for p in pairs))


def timing_table(img_size: int, batch_size: int, repeats: int) -> None:
    click.echo(f"\n## SSL step on CPU: visible-only vs all-token encoding ({batch_size} clips of 4 x {img_size}^2, "
               f"{torch.get_num_threads()} thread(s), medians of {repeats} alternating repeats)")
    click.echo("| encoder | mask | tokens/seq (visible) | step all (ms) | step visible (ms) | step ratio | encoder-only ratio "
               "| step FLOP ratio | target |")
    click.echo("|---|---|---|---|---|---|---|---|---|")
    for name in ("mae2d_vit_tiny", "videomae_vit_tiny"):
        for ratio in (0.75, 0.9):
            torch.manual_seed(0)
            model = build_masked_autoencoder({"encoder": name, "img_size": img_size, "num_frames": 4,
                                              "ssl": {"mask_ratio": ratio}})
            x = torch.randn(batch_size, 4, 3, img_size, img_size)
            mask = model.masking(batch_size, model.encoder.grid, torch.Generator().manual_seed(0))
            t_all, t_visible, step_ratio = paired_timings(lambda: ssl_step(model, x, mask, False),
                                                          lambda: ssl_step(model, x, mask, True), repeats)
            *_, encoder_ratio = paired_timings(lambda: ssl_step(model, x, mask, False, encoder_only=True),
                                               lambda: ssl_step(model, x, mask, True, encoder_only=True), repeats)
            length = model.encoder.steps_per_sequence * model.encoder.grid[1]
            visible = int((~model.encoder.to_sequences(mask)[0]).sum())
            flops = {vis: count_flops(lambda: ssl_step(model, x, mask, vis)) for vis in (False, True)}
            target = 0.35 if ratio == 0.75 else 0.2
            click.echo(f"| {name} | {ratio} | {length} ({visible}) | {1e3 * t_all:.1f} | {1e3 * t_visible:.1f} "
                       f"| {step_ratio:.2f}x | {encoder_ratio:.2f}x "
                       f"| {flops[True] / flops[False]:.2f}x | <= {target}x |")


def tats_models(name: str, img_size: int, ratio: float) -> dict:
    """The same masked autoencoder (seed 0) under random masking and under TATS past its warm-up (the paper's
    phase: every step draws from the sampler, records the episode and runs the PPO phase)."""
    models = {}
    for masking in ("random", "tats"):
        torch.manual_seed(0)
        models[masking] = build_masked_autoencoder({"encoder": name, "img_size": img_size, "num_frames": 4,
                                                    "ssl": {"mask_ratio": ratio, "masking": masking,
                                                            "tats_warmup_epochs": 0.0}})
    models["tats"].tats.schedule(steps_per_epoch=1)
    return models


def tats_table(img_size: int, batch_size: int, repeats: int) -> None:
    click.echo(f"\n## TATS step vs random-mask step on CPU ({batch_size} clips of 4 x {img_size}^2, "
               f"{torch.get_num_threads()} thread(s), medians of {repeats} alternating repeats; TATS at its defaults: "
               f"1 recorded step and {TATS_DEFAULTS['tats_ppo_epochs']} PPO steps per phase)")
    click.echo("| encoder | mask | step random (ms) | step TATS (ms) | TATS / random | of which: sampler draw (ms) "
               "| PPO phase (ms) | step FLOPs TATS / random |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for name in ("mae2d_vit_tiny", "videomae_vit_tiny"):
        for ratio in (0.75, 0.9):
            models = tats_models(name, img_size, ratio)
            x = torch.randn(batch_size, 4, 3, img_size, img_size)
            t_random, t_tats, ratio_tats = paired_timings(lambda: models["random"](x).loss.backward(),
                                                          lambda: models["tats"](x).loss.backward(), repeats)
            tats = models["tats"]
            tokens = tats.encoder.from_sequences(tats.encoder.embed_patches(tats.encoder.patch_sequences(x))).detach()
            t_draw, t_phase, _ = paired_timings(lambda: tats.tats.draw(tokens, tats.masked_per_sequence),
                                                lambda: phase(tats, tokens), repeats)
            flops = {k: count_flops(lambda: m(x).loss.backward()) for k, m in models.items()}
            click.echo(f"| {name} | {ratio} | {1e3 * t_random:.1f} | {1e3 * t_tats:.1f} | {ratio_tats:.2f}x "
                       f"| {1e3 * t_draw:.1f} | {1e3 * t_phase:.1f} | {flops['tats'] / flops['random']:.2f}x |")
    x = torch.randn(1, 4, 3, 224, 224)
    for name, ratio in (("mae2d_vit_b16", 0.9), ("videomae_vit_b16", 0.9)):
        models = tats_models(name, 224, ratio)
        flops = {k: count_flops(lambda: m(x).loss.backward()) for k, m in models.items()}
        click.echo(f"| {name} (paper size, 4 x 224^2, FLOPs only) | {ratio} | | | | | "
                   f"| {flops['tats'] / flops['random']:.2f}x |")


def phase(model, tokens: torch.Tensor) -> None:
    """One PPO phase of ``model``'s sampler on one episode drawn for ``tokens`` (every masked token rewarded,
    rewards uniform in [0, 1))."""
    episode = model.tats.draw(tokens, model.masked_per_sequence)[1]
    episode.rewarded, episode.reward = episode.mask, torch.rand(episode.mask.shape) * episode.mask
    model.tats.buffer = [episode]
    model.tats.update()
    model.tats.buffer = []


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def paper_rows() -> list[dict]:
    rows = []
    x = torch.randn(1, 4, 3, 224, 224)
    for name, ratio in PAPER:
        torch.manual_seed(0)
        config = {"encoder": name, "img_size": 224, "num_frames": 4}
        mae = build_masked_autoencoder(config | {"ssl": {"mask_ratio": ratio}})
        mask = mae.masking(1, mae.encoder.grid, torch.Generator().manual_seed(0))
        ssl = count_flops(lambda: ssl_step(mae, x, mask, visible_only=True))
        ssl_all = count_flops(lambda: ssl_step(mae, x, mask, visible_only=False))
        classifier = build_model(config | {"head": "attn"})
        finetune = count_flops(lambda: torch.nn.functional.cross_entropy(classifier(x), torch.zeros(1, dtype=torch.long)).backward())
        forward = count_flops(lambda: classifier(x))  # (under no_grad FlopCounterMode's module tracker fails)
        spatial = sum(p.numel() for n, p in mae.encoder.named_parameters() if not n.startswith("temporal."))
        rows.append({"name": name, "ratio": ratio, "encoder": sum(p.numel() for p in mae.encoder.parameters()),
                     "spatial": spatial, "decoder": sum(p.numel() for p in mae.decoder.parameters()),
                     "classifier": sum(p.numel() for p in classifier.parameters()),
                     "ssl": ssl, "ssl_all": ssl_all, "finetune": finetune, "forward": forward})
        del mae, classifier
    return rows


def paper_tables(ssl_epochs: int, ft_epochs: int, mfu: float) -> None:
    rows = paper_rows()
    click.echo("\n## Paper sizes, 4 x 224^2 clips (FlopCounterMode; 1 multiply-add = 2 FLOPs)")
    click.echo("| encoder | params encoder (of which temporal attn) | params decoder | params classifier (attn head) "
               "| SSL step fwd+bwd GFLOPs/clip (mask) | same, all-token encoding | visible/all | finetune fwd GFLOPs/clip "
               "| finetune fwd+bwd GFLOPs/clip |")
    click.echo("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        click.echo(f"| {r['name']} | {r['encoder'] / 1e6:.1f}M ({(r['encoder'] - r['spatial']) / 1e6:.1f}M) "
                   f"| {r['decoder'] / 1e6:.1f}M | {r['classifier'] / 1e6:.1f}M | {r['ssl'] / 1e9:.1f} ({r['ratio']}) "
                   f"| {r['ssl_all'] / 1e9:.1f} | {r['ssl'] / r['ssl_all']:.2f}x "
                   f"| {r['forward'] / 1e9:.1f} | {r['finetune'] / 1e9:.1f} |")
    click.echo(f"\n## GPU-hours at {mfu:.0%} of the bf16 dense peak (A100 {PEAK_BF16_TFLOPS['A100']:.0f}, "
               f"H100 {PEAK_BF16_TFLOPS['H100']:.0f} TFLOP/s)")
    click.echo(f"SSL generation = {ssl_epochs} epochs x {SSL_CLIPS:,} clips (train+val+test); "
               f"finetune = {ft_epochs} epochs x {FT_CLIPS:,} train clips; fwd+bwd FLOPs measured above.")
    click.echo("| encoder | SSL generation A100 h | SSL generation H100 h | finetune A100 h | finetune H100 h |")
    click.echo("|---|---|---|---|---|")
    for r in rows:
        hours = {}
        for gpu, peak in PEAK_BF16_TFLOPS.items():
            rate = peak * 1e12 * mfu
            hours[gpu] = (ssl_epochs * SSL_CLIPS * r["ssl"] / rate / 3600, ft_epochs * FT_CLIPS * r["finetune"] / rate / 3600)
        click.echo(f"| {r['name']} | {hours['A100'][0]:.2f} | {hours['H100'][0]:.2f} | {hours['A100'][1]:.2f} | {hours['H100'][1]:.2f} |")


@click.command()
@click.option("--img-size", default=64, show_default=True, help="Frame side (px) of the CPU timing runs.")
@click.option("--batch-size", default=32, show_default=True, help="Clips per CPU timing step.")
@click.option("--repeats", default=7, show_default=True, help="Timed steps per configuration (median reported).")
@click.option("--threads", default=1, show_default=True, help="torch CPU threads.")
@click.option("--ssl-epochs", default=100, show_default=True, help="Epochs per SSL generation (the seed's ssl600 -> ssl700 step).")
@click.option("--ft-epochs", default=50, show_default=True, help="Finetuning epochs assumed for the GPU-hour table.")
@click.option("--mfu", default=0.4, show_default=True, help="Model FLOP utilisation assumed for the GPU-hour table.")
@click.option("--skip-paper", is_flag=True, help="Only the CPU timing tables.")
@click.option("--skip-visible", is_flag=True, help="Leave out the visible-only vs all-token table.")
@click.option("--skip-tats", is_flag=True, help="Leave out the TATS vs random-masking table.")
def main(img_size: int, batch_size: int, repeats: int, threads: int, ssl_epochs: int, ft_epochs: int, mfu: float,
         skip_paper: bool, skip_visible: bool, skip_tats: bool) -> None:
    """Print the SSL step benchmark tables."""
    torch.set_num_threads(threads)
    if not skip_visible:
        timing_table(img_size, batch_size, repeats)
    if not skip_tats:
        tats_table(img_size, batch_size, repeats)
    if not skip_paper:
        paper_tables(ssl_epochs, ft_epochs, mfu)


if __name__ == "__main__":
    main()
