"""Training images as whole pictures, for the random-resized crop the authors' code takes (``augment="full_image"``).

The project's default pipeline decodes each image once to the centred square the test transform sees and crops
inside it. Dassl's ``random_resized_crop``, which the released code uses, crops the *whole* image instead (area
fraction and side ratio relative to the full picture) and resizes with bicubic filtering. To do that on the device,
each training image is decoded once with its shorter side at S, its longer side cut to at most ⌈4S/3⌉ around the
centre (so a 4:3 photo keeps all of it; wider ones lose their ends), and placed in an L×L canvas (L = ⌈4S/3⌉)
whose unused part repeats the image's edge pixels; ``valid`` records each image's (height, width).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

MAX_RATIO = 4 / 3


def canvas_size(size: int) -> int:
    return math.ceil(size * MAX_RATIO)


def to_canvas(image: Image.Image, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """uint8 [3, L, L] canvas of ``image`` (shorter side ``size``, longer side cut to L) and its (height, width)."""
    image = TF.resize(image.convert("RGB"), size, interpolation=InterpolationMode.BICUBIC)
    side = canvas_size(size)
    w, h = image.size
    if max(w, h) > side:
        image = TF.center_crop(image, [min(h, side), min(w, side)])
        w, h = image.size
    pixels = TF.pil_to_tensor(image)
    canvas = F.pad(pixels[None].float(), (0, side - w, 0, side - h), mode="replicate")[0]
    return canvas.round().to(torch.uint8), (h, w)


def decode_full(ds, samples: Sequence, size: int, workers: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 [N, 3, L, L] canvases, int64 [N, 2] valid heights and widths) of ``samples`` of dataset ``ds``."""
    side = canvas_size(size)
    out = torch.empty((len(samples), 3, side, side), dtype=torch.uint8)
    valid = torch.empty((len(samples), 2), dtype=torch.int64)

    def one(i: int) -> None:
        out[i], hw = to_canvas(ds.open_image(samples[i]), size)
        valid[i] = torch.tensor(hw)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(samples))))
    return out, valid


def random_resized_crop_full(canvas: torch.Tensor, valid: torch.Tensor, generator: torch.Generator, size: int,
                             scale: tuple[float, float] = (0.08, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Random-resized crops of whole images + horizontal flips, bicubic, as float in [0, 1] of shape [N, 3, size, size].

    ``canvas``: float [N, 3, L, L] in [0, 1] (uint8 / 255); ``valid``: [N, 2] (height, width) of each picture. The
    crop's area is a U(scale) fraction of the picture's, its side ratio log-uniform in ``ratio``; sides longer than
    the picture are clamped to it (torchvision retries instead), and the crop lies uniformly inside the picture.
    """
    n, side = canvas.shape[0], canvas.shape[-1]
    dev = canvas.device
    u = torch.rand((n, 5), generator=generator, device=generator.device).to(dev)
    h = valid[:, 0].to(dev, torch.float32)
    w = valid[:, 1].to(dev, torch.float32)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0]) * h * w
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    cw = torch.minimum(torch.sqrt(area * r), w)
    ch = torch.minimum(torch.sqrt(area / r), h)
    x0 = (w - cw) * u[:, 2]
    y0 = (h - ch) * u[:, 3]
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0).to(dev)
    theta = torch.zeros((n, 2, 3), device=dev, dtype=canvas.dtype)
    theta[:, 0, 0] = cw / side * flip  # output x in [-1, 1] -> the crop's span in the canvas' normalised x
    theta[:, 0, 2] = (2 * x0 + cw) / side - 1
    theta[:, 1, 1] = ch / side
    theta[:, 1, 2] = (2 * y0 + ch) / side - 1
    grid = F.affine_grid(theta, [n, canvas.shape[1], size, size], align_corners=False)
    out = F.grid_sample(canvas, grid, mode="bicubic", padding_mode="border", align_corners=False)
    return out.clamp(0.0, 1.0)
