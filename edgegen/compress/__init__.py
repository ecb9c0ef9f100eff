"""Deep Compression's first two stages on a torch model (Han et al., ICLR 2016).

* ``spec``: what to do — ``PruneSpec``, ``ShareSpec``, ``LayerSpec``,
  ``CompressSpec`` (frozen, validated, JSON round-trip), ``default_spec``;
* ``prune``: magnitude masks, mask enforcement while training, iterative
  prune→retrain;
* ``sensitivity``: per-layer pruning scans and the sparsities they allow;
* ``share``: k-means weight sharing with a reserved zero slot, centroid
  fine-tuning, snapping codebooks to the int8 grid;
* ``pipeline``: ``compress(model, spec, train_fn=..., eval_fn=...)`` running
  it all and returning a ``CompressedModel``.

Layers are Conv2d and Linear modules named by module path; every array is in
torch layout (the frontend permutes to OHWI / NHWC order later).
"""

from edgegen.compress.pipeline import (
    METHODS,
    CompressedModel,
    LayerCompression,
    compress,
)
from edgegen.compress.prune import (
    MaskedWeight,
    TrainFn,
    apply_mask,
    apply_masks,
    iterative_prune,
    magnitude_mask,
    mask_of,
    masks_of,
    prune_layers,
    quality_threshold,
    remove_mask,
    remove_masks,
    step_sparsity,
)
from edgegen.compress.sensitivity import (
    DEFAULT_SPARSITIES,
    EvalFn,
    SensitivityScan,
    plot_sensitivity,
    scan_sensitivity,
    sparsities_for_budget,
    write_sensitivity_report,
)
from edgegen.compress.share import (
    FILLER_SLOT,
    CodebookWeight,
    SharedLayer,
    SnappedCodebook,
    attach_codebook,
    cluster_layer,
    codebook_parameters,
    finetune_centroids,
    kmeans_1d,
    remove_sharing,
    share_weights,
    shared_layers,
    snap_codebook,
    snap_codebooks,
)
from edgegen.compress.spec import (
    PAPER_SPARSITY,
    SPEC_VERSION,
    CompressSpec,
    KMeansInit,
    LayerSpec,
    PruneSpec,
    ShareSpec,
    default_spec,
)

__all__ = [
    "CodebookWeight",
    "CompressSpec",
    "CompressedModel",
    "DEFAULT_SPARSITIES",
    "EvalFn",
    "FILLER_SLOT",
    "KMeansInit",
    "LayerCompression",
    "LayerSpec",
    "METHODS",
    "MaskedWeight",
    "PAPER_SPARSITY",
    "PruneSpec",
    "SPEC_VERSION",
    "SensitivityScan",
    "ShareSpec",
    "SharedLayer",
    "SnappedCodebook",
    "TrainFn",
    "apply_mask",
    "apply_masks",
    "attach_codebook",
    "cluster_layer",
    "codebook_parameters",
    "compress",
    "default_spec",
    "finetune_centroids",
    "iterative_prune",
    "kmeans_1d",
    "magnitude_mask",
    "mask_of",
    "masks_of",
    "plot_sensitivity",
    "prune_layers",
    "quality_threshold",
    "remove_mask",
    "remove_masks",
    "remove_sharing",
    "scan_sensitivity",
    "share_weights",
    "shared_layers",
    "snap_codebook",
    "snap_codebooks",
    "sparsities_for_budget",
    "step_sparsity",
    "write_sensitivity_report",
]
