"""report.md and report.json of a deploy folder: written by ``write_report``,
read back (what ``edgegen verify`` reuses of them) by ``saved_report``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgegen import __version__
from edgegen.errors import UserError
from edgegen.quantize.artifact import content_hash
from edgegen.report.compression import markdown_table

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _board_dict(board) -> dict | None:
    if board is None:
        return None
    return {
        "board": board.board,
        "bit_exact": board.bit_exact,
        "vectors": board.vectors,
        "summary": board.comparison.line(f"{board.board} (QEMU)"),
        "instructions": board.instructions.total,
        "instructions_opt": board.instructions.opt,
        "kernels": board.kernels,
        "instructions_per_layer": dict(board.instructions.per_layer),
        "flash_bytes": board.flash_bytes,
        "ram_bytes": board.ram_bytes,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def report_dict(*, name, prefix, qgraph, plan, rows, result, source, dataset, storage, seconds,
                choice=None) -> dict:
    return {
        "edgegen_version": __version__,
        "model": name,
        "prefix": prefix,
        "source": source,
        "dataset": dataset_record(dataset),
        "qgraph_sha256": content_hash(qgraph),
        "rounding": qgraph.rounding.value,
        "quantization": qgraph.metadata,
        "layers": [r.as_dict() for r in rows],
        "totals": {
            "parameters": sum(r.parameters for r in rows),
            "const_bytes": sum(r.const_bytes for r in rows),
            "arena_bytes": plan.arena_size,
            # <prefix>_invoke_in_arena's arena, holding the input and output too
            "io_arena_bytes": None if plan.in_arena is None else plan.in_arena.arena_size,
            "input_bytes": qgraph.tensor(qgraph.input).size,
            "output_bytes": qgraph.tensor(qgraph.output).size,
        },
        "accuracy": {
            "test_images": result.test_vectors,
            "float": result.float_accuracy,
            "float_full_test_set": result.float_accuracy_full,
            "int8_golden": result.golden_accuracy,
            "c_host": result.c_accuracy,
        },
        "verification": {
            "test_vectors": result.test_vectors,
            "random_vectors": result.random_vectors,
            "bit_exact": result.comparison.bit_exact,
            "mismatched_vectors": result.comparison.mismatched_vectors,
            "summary": result.comparison.line("golden vs host C"),
        },
        "storage": storage.as_dict(),
        "storage_choice": None if choice is None else choice.to_json(),
        "board": _board_dict(result.board),
        "seconds": round(seconds, 2),
    }


def markdown(report: dict) -> str:
    t = report["totals"]
    lines = [
        f"# {report['model']} — edgegen {report['edgegen_version']}",
        "",
        f"Data: {report['dataset'].get('description', report['dataset']['name'])}; "
        "int8 per the TFLite spec, "
        f"{report['rounding']} rounding; quantized graph sha256 `{report['qgraph_sha256'][:16]}…`.",
        *[f"Import: {note}." for note in report["quantization"].get("import_notes", [])],
        "",
        "| # | layer | op | output | params | weights stored | const bytes | activation bytes "
        "| scratch | placed |",
        "|--:|---|---|---|--:|---|--:|--:|--:|---|",
    ]
    for r in report["layers"]:
        shape = "x".join(str(d) for d in r["output_shape"])
        lines.append(
            f"| {r['index']} | {r['name']} | {r['kind']} | {shape} | {r['parameters']:,} | "
            f"{r.get('format', '')} | {r['const_bytes']:,} | {r['output_bytes']:,} | "
            f"{r.get('scratch_bytes', 0) or ''} | {r['output_location']} |"
        )
    choice = report.get("storage_choice") or {}
    lines += [
        f"| | **total** | | | **{t['parameters']:,}** | | **{t['const_bytes']:,}** | | | |",
        "",
        f"- Weights stored as chosen by `--format {choice.get('format', 'auto')}` with "
        f"`--optimize {choice.get('optimize', 'balanced')}` (formats: docs/storage_formats.md)",
        f"- Constant data (weights in their formats, biases, multipliers, shifts), measured from "
        f"the compiled object: **{t['const_bytes']:,} bytes**",
        f"- Activation arena: **{t['arena_bytes']:,} bytes** (plus the caller's input "
        f"{t['input_bytes']} and output {t['output_bytes']} bytes)" + _in_arena_text(report),
        _accuracy_line(report),
        f"- Verification: {report['verification']['summary']}",
        "",
    ]
    return "\n".join(lines)


def _in_arena_text(report: dict) -> str:
    io_arena = report["totals"].get("io_arena_bytes")
    if io_arena is None:
        return ""
    return (f"; or **{io_arena:,} bytes** in all with the input and output inside the arena "
            f"(`{report['prefix']}_invoke_in_arena`)")


def _accuracy_line(report: dict) -> str:
    a = report["accuracy"]
    if a["int8_golden"] is None:
        return (f"- Accuracy not measured: the data has no labels (verified on "
                f"{a['test_images']:,} test inputs)")
    return (f"- Accuracy on {a['test_images']:,} test inputs: float {_pct(a['float'])}, "
            f"int8 golden {_pct(a['int8_golden'])}, C on host {_pct(a['c_host'])}")


def dataset_record(dataset) -> dict:
    """What a report keeps of the data: enough for ``verify`` to load it again."""
    return {
        "name": dataset.name,
        "path": None if dataset.path is None else str(dataset.path),
        "layout": None if dataset.layout is None else dataset.layout.value,
        "sample_shape": list(dataset.sample_shape),
        "synthetic_seed": dataset.synthetic_seed,
        "labelled": dataset.has_labels,
        "description": dataset.describe(),
    }


def write_report(folder: Path, **kwargs) -> dict:
    report = report_dict(**kwargs)
    (folder / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    storage = (
        "\n## Storage by format (Deep Compression's accounting)\n\n"
        "The same int8 weights counted the way the paper counts them: pruned (P), with codebook "
        "indices (Q) and Huffman-coded (H), every bit needed to decode counted (bit-packed, "
        "separate streams). The C stores each layer in the format named above; its bytes are "
        "the measured const bytes:\n\n"
        + markdown_table(kwargs["storage"]) + "\n"
    )
    board = kwargs["result"].board
    on_target = ("\n## On the target\n\n```\n" + "\n".join(board.lines()) + "\n```\n") if board else ""
    (folder / REPORT_MD).write_text(markdown(report) + on_target + storage)
    return report


@dataclass(frozen=True)
class SavedReport:
    """What ``verify`` reuses of a deploy folder's report.json (all optional:
    the file is the user's to lose or edit)."""

    present: bool
    data_path: Path | None
    float_accuracy_full: float | None
    layout: str | None = None
    synthetic_seed: int | None = None  # synthetic data: regenerated from seed and shape
    sample_shape: tuple[int, ...] | None = None


def saved_report(folder: Path) -> SavedReport:
    """The data and float accuracy recorded by deploy; a report that is
    absent or lacks them gives None, one that is damaged a UserError."""
    path = Path(folder) / REPORT_JSON
    if not path.is_file():
        return SavedReport(False, None, None)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}): pass --data, or redeploy") from None
    if not isinstance(report, dict):
        raise UserError(f"{path} is not a deploy report (not a JSON object): pass --data, "
                        "or redeploy")
    dataset = report.get("dataset")
    dataset = dataset if isinstance(dataset, dict) else {}
    place = dataset.get("path", dataset.get("directory"))  # "directory": reports of IDX folders only
    accuracy = report.get("accuracy")
    full = accuracy.get("float_full_test_set") if isinstance(accuracy, dict) else None
    layout = dataset.get("layout")
    seed = dataset.get("synthetic_seed")
    shape = dataset.get("sample_shape")
    good_shape = (isinstance(shape, list) and 1 <= len(shape) <= 3
                  and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 4096
                          for d in shape))
    return SavedReport(
        True, Path(place) if isinstance(place, str) and place else None,
        float(full) if isinstance(full, (int, float)) and not isinstance(full, bool)
        and 0.0 <= full <= 1.0 else None,
        layout=layout if isinstance(layout, str) else None,
        synthetic_seed=seed if isinstance(seed, int) and not isinstance(seed, bool)
        and 0 <= seed < 2**32 else None,
        sample_shape=tuple(shape) if good_shape else None,
    )
