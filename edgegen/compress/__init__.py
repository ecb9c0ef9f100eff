"""Deep Compression's first two stages on a torch model (Han et al., ICLR 2016),
after filter pruning (Li et al., ICLR 2017).

* ``spec``: what to do — ``FilterPruneSpec``, ``PruneSpec``, ``ShareSpec``,
  ``LayerSpec``, ``CompressSpec`` (frozen, validated, JSON round-trip),
  ``default_spec``;
* ``filter_prune``: whole filters removed by L1 norm with the channels that
  depend on them, a smaller dense model;
* ``prune``: magnitude masks, mask enforcement while training, iterative
  prune→retrain;
* ``sensitivity``: per-layer pruning and filter-pruning scans and the
  sparsities they allow;
* ``share``: k-means weight sharing with a reserved zero slot, centroid
  fine-tuning, snapping codebooks to the int8 grid;
* ``pipeline``: ``compress(model, spec, train_fn=..., eval_fn=...)`` running
  it all and returning a ``CompressedModel``.

Layers are Conv2d and Linear modules named by module path; every array is in
torch layout (the frontend permutes to OHWI / NHWC order later).
"""

from edgegen.compress.filter_prune import (
    FilterGroup,
    FilterPruned,
    KeptFilters,
    apply_kept_filters,
    filter_groups,
    prune_filters,
)
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
    DEFAULT_FILTER_RATIOS,
    DEFAULT_SPARSITIES,
    EvalFn,
    SensitivityScan,
    plot_sensitivity,
    scan_filter_sensitivity,
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
    FilterPruneSpec,
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
    "DEFAULT_FILTER_RATIOS",
    "DEFAULT_SPARSITIES",
    "EvalFn",
    "FILLER_SLOT",
    "FilterGroup",
    "FilterPruneSpec",
    "FilterPruned",
    "KeptFilters",
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
    "apply_kept_filters",
    "apply_mask",
    "apply_masks",
    "attach_codebook",
    "cluster_layer",
    "codebook_parameters",
    "compress",
    "default_spec",
    "filter_groups",
    "finetune_centroids",
    "iterative_prune",
    "kmeans_1d",
    "magnitude_mask",
    "mask_of",
    "masks_of",
    "plot_sensitivity",
    "prune_filters",
    "prune_layers",
    "quality_threshold",
    "remove_mask",
    "remove_masks",
    "remove_sharing",
    "scan_filter_sensitivity",
    "scan_sensitivity",
    "share_weights",
    "shared_layers",
    "snap_codebook",
    "snap_codebooks",
    "sparsities_for_budget",
    "step_sparsity",
    "write_sensitivity_report",
]
