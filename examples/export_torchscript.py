#!/usr/bin/env python3
"""Exports PyTorch models as slidestream TorchScript model directories.

    python3 examples/export_torchscript.py OUT_DIR

writes three model directories, each with model.yaml (architecture: torchscript), model.pt and
reference inputs/outputs for parity tests:

  OUT_DIR/unet        a small same-padded U-Net (depth 2, 4 filters), scripted; 64 px at 0.5 um/px
  OUT_DIR/two_input   a target + context model, traced: target 64 px at 0.5 um/px and context
                      64 px at 2.0 um/px; the context's central 16 px (the target's 32 um field of
                      view) are upsampled 4x and concatenated to the target features
  OUT_DIR/colour      the deterministic "colour classifier" (below), scripted; 72 px in, 64 px out

Colour classifier rule (per pixel, on the uint8 RGB input, no learned weights): class 0
(background, white) when G >= 192; otherwise class 1 (pink, eosin-like) when R > B; otherwise
class 2 (purple, haematoxylin-like). The output is the centre 64 x 64 px of the 72 x 72 px input
(a "valid" crop of 4 px per side, as a valid-convolution model would lose). Logits are 10 for the
chosen class and 0 for the others, so the argmax is exact and the softmax of the chosen class is
e^10 / (e^10 + 2). Segment tests use it to know the expected label map exactly.

The U-Net declares its embedding (for `slidestream features`) as an exported method, `embed`:
the bottleneck average-pooled to N x 16 (model.yaml `embedding: {method: embed}`); the two-input
model as element 1 of its forward's tuple, the context features N x 4 x 64 x 64, which
slidestream average-pools to N x 4 (`embedding: {output: 1}`).

Reference files per directory (for tests/test_models_torchscript.cpp): reference_input<b>.u8
(N x H x W x 3 uint8 RGB for branch b), reference_probs.f32 (N x C x h x w float32 softmax,
little endian), reference_embedding.f32 (N x D float32, when the model declares an embedding);
N is in reference.txt. Inputs are normalised as model.yaml says: x = (rgb / 255 - mean) / std.

Needs PyTorch (Debian: python3-torch) and numpy.
"""
import hashlib
import os
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

N_REFERENCE = 2


class SmallUNet(nn.Module):
    """Same-padded U-Net, depth 2: conv blocks of two 3x3 convs + ReLU, max pooling, nearest
    upsampling + 3x3 conv, skip concatenation, 1x1 head."""

    def __init__(self, n_classes: int = 3, f: int = 4):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())

        self.enc0 = block(3, f)
        self.enc1 = block(f, 2 * f)
        self.mid = block(2 * f, 4 * f)
        self.up1 = nn.Conv2d(4 * f, 2 * f, 3, padding=1)
        self.dec1 = block(4 * f, 2 * f)
        self.up0 = nn.Conv2d(2 * f, f, 3, padding=1)
        self.dec0 = block(2 * f, f)
        self.head = nn.Conv2d(f, n_classes, 1)

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck, average-pooled: N x 4f."""
        e1 = self.enc1(F.max_pool2d(self.enc0(x), 2))
        return self.mid(F.max_pool2d(e1, 2)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(x)
        e1 = self.enc1(F.max_pool2d(e0, 2))
        m = self.mid(F.max_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([e1, F.relu(self.up1(F.interpolate(m, scale_factor=2.0)))], 1))
        d0 = self.dec0(torch.cat([e0, F.relu(self.up0(F.interpolate(d1, scale_factor=2.0)))], 1))
        return self.head(d0)


class TwoInputModel(nn.Module):
    """Target (0.5 um/px) + context (2.0 um/px, 4x the field of view), one output at 0.5 um/px.
    Returns a tuple (logits, context features) to show that the first element is used."""

    def __init__(self, n_classes: int = 2, f: int = 4):
        super().__init__()
        self.target = nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.ReLU())
        self.context = nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(2 * f, n_classes, 1)

    def forward(self, target: torch.Tensor, context: torch.Tensor):
        t = self.target(target)
        c = self.context(context)
        side = c.shape[-1] // 4
        start = (c.shape[-1] - side) // 2
        centre = c[:, :, start:start + side, start:start + side]
        c_up = F.interpolate(centre, scale_factor=4.0, mode="nearest")
        return self.head(torch.cat([t, c_up], 1)), c


class ColourClassifier(nn.Module):
    """The fixed rule of the module docstring, on 0..1 RGB (identity normalisation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, 4:-4, 4:-4]
        r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        # 191.5 / 255 sits between two uint8 levels, so the threshold is exact after / 255.
        white = g >= 191.5 / 255.0
        pink = (~white) & (r > b)
        purple = (~white) & (r <= b)
        return torch.cat([white, pink, purple], 1).float() * 10.0


def yaml_text(branches, output, classes, mean, std):
    lines = ["format: slidestream.model/1", "architecture: torchscript", "branches:"]
    lines += [f"  - {{spacing_um: {s}, size_px: {n}}}" for s, n in branches]
    lines.append(f"output: {{spacing_um: {output[0]}, size_px: {output[1]}}}")
    lines.append("classes:")
    lines += [f"  - {{name: {name}, value: {value}, colour: [{c[0]}, {c[1]}, {c[2]}]}}"
              for name, value, c in classes]
    lines.append(f"normalisation: {{mean: {list(mean)}, std: {list(std)}}}")
    return "\n".join(lines) + "\n"


def export(directory, module, branches, output, classes, mean=(0.0,) * 3, std=(1.0,) * 3,
           trace=False, embedding=None):
    """embedding: None, ("method", NAME) or ("output", INDEX), as model.yaml declares it."""
    os.makedirs(directory, exist_ok=True)
    module.eval()
    rng = np.random.default_rng(7)
    inputs_u8 = [rng.integers(0, 256, size=(N_REFERENCE, n, n, 3), dtype=np.uint8)
                 for _, n in branches]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    inputs = [(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255.0 - mean_t) / std_t
              for u8 in inputs_u8]
    scripted = torch.jit.trace(module, tuple(inputs)) if trace else torch.jit.script(module)
    weights = os.path.join(directory, "model.pt")
    torch.jit.save(scripted, weights)
    with torch.no_grad():
        out = scripted(*inputs)
        logits = out[0] if isinstance(out, tuple) else out
        probs = torch.softmax(logits.float(), 1).numpy().astype("<f4")
        if embedding is not None:
            kind, value = embedding
            features = getattr(scripted, value)(*inputs) if kind == "method" else out[value]
            if features.dim() == 4:
                features = features.mean(dim=(2, 3))
            features.numpy().astype("<f4").tofile(
                os.path.join(directory, "reference_embedding.f32"))
    for b, u8 in enumerate(inputs_u8):
        u8.tofile(os.path.join(directory, f"reference_input{b}.u8"))
    probs.tofile(os.path.join(directory, "reference_probs.f32"))
    with open(os.path.join(directory, "reference.txt"), "w") as f:
        f.write(f"{N_REFERENCE}\n")
    with open(weights, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    text = yaml_text(branches, output, classes, mean, std)
    text += f"weights: {{file: model.pt, sha256: {sha256}}}\n"
    if embedding is not None:
        text += f"embedding: {{{embedding[0]}: {embedding[1]}}}\n"
    text += "training: {source: examples/export_torchscript.py}\n"
    with open(os.path.join(directory, "model.yaml"), "w") as f:
        f.write(text)
    print(f"wrote {directory}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    torch.manual_seed(0)
    three = [("background", 0, (255, 255, 255)), ("stroma", 1, (255, 105, 180)),
             ("nuclei", 2, (90, 40, 160))]
    export(os.path.join(out, "unet"), SmallUNet(), [(0.5, 64)], (0.5, 64), three,
           mean=(0.8, 0.6, 0.7), std=(0.2, 0.25, 0.2), embedding=("method", "embed"))
    export(os.path.join(out, "two_input"), TwoInputModel(), [(0.5, 64), (2.0, 64)], (0.5, 64),
           [("background", 0, (0, 0, 0)), ("tumour", 1, (200, 0, 0))], trace=True,
           embedding=("output", 1))
    export(os.path.join(out, "colour"), ColourClassifier(), [(0.5, 72)], (0.5, 64),
           [("background", 0, (255, 255, 255)), ("pink", 1, (255, 105, 180)),
            ("purple", 2, (90, 40, 160))])


if __name__ == "__main__":
    main()
