"""Deep Compression's weight-distribution figure, per compressed layer (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from edgegen.compress.pipeline import CompressedModel


def plot_weight_distributions(original: nn.Module, compressed: CompressedModel,
                              folder: Path) -> list[Path]:
    """Per layer, the paper's figure: weights before pruning, the survivors
    after pruning, and the shared values (centroids) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    params = dict(original.named_parameters())
    paths = []
    for layer in compressed.layers:
        before = params[f"{layer.name}.weight"].detach().numpy().reshape(-1)
        survivors = before[layer.mask.reshape(-1)]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        bins = np.linspace(before.min(), before.max(), 121)
        ax.hist(before, bins=bins, color="0.75", label=f"before pruning ({before.size:,})")
        ax.hist(survivors, bins=bins, color="tab:blue", alpha=0.8,
                label=f"kept after pruning ({survivors.size:,})")
        if layer.codebook_q is not None:
            used = np.unique(layer.indices[layer.mask])
            centroids = layer.scale * layer.codebook_q[used].astype(np.float64)
            for i, c in enumerate(centroids):
                ax.axvline(c, color="tab:red", linewidth=0.6, label="shared values" if i == 0 else None)
        ax.set_title(f"{layer.name}: {layer.sparsity:.1%} pruned"
                     + (f", {len(np.unique(layer.indices[layer.mask]))} shared values"
                        if layer.codebook_q is not None else ""))
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{layer.name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
