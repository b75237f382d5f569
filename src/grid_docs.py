"""The grid's figures in README.md and docs/results.md, generated from the grid CSV.

Each generated part sits between `<!-- name -->` and `<!-- /name -->` markers and is rebuilt
whole by scripts/update_grid_docs.py, so a figure in the prose can never drift from the CSV.
Pure functions: rows (dicts as grid.read_rows returns them) in, markdown out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from src import grid


@dataclass(frozen=True)
class GridDoc:
    """One dataset's grid: where its CSV lives and how its tables are captioned."""
    dataset: str
    csv: str          # relative to the repository root; results.md and the plot go beside it
    title: str        # as in "Test accuracy (%) on <title>"
    test_set: str     # what a test accuracy is measured on
    total: int        # settings in all (noise types x ratios x seeds)

    def markers(self) -> Tuple[str, str, str]:
        """The README table, the README verdict and the docs/results.md status block."""
        return (f"grid_table_{self.dataset}", f"grid_verdict_{self.dataset}", f"grid_status_{self.dataset}")


GRIDS = (
    GridDoc("trec", "docs/grid/trec/results.csv", "full TREC", "500 test questions", 18),
    GridDoc("20news", "docs/grid/20news/results.csv", "20 Newsgroups (4,000 training documents)",
            "7,528 test documents", 12),
)

SETTING_METHODS = ("single", "cr", "traj_lr", "cleanlab_lr", "npc", "dygen",
                   "dygen-no-dynamics", "dygen-no-prior", "dygen-no-coreg")


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with everything between `<!-- name -->` and `<!-- /name -->` replaced by `body`
    (the markers stay). Raises ValueError when a marker is missing or doubled, so a renamed
    marker fails loudly instead of leaving a stale figure."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected exactly one '{start}' ... '{end}' block")
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + "\n" + body.strip("\n") + "\n" + text[j:]


def _label(nt: str, r: float) -> str:
    return f"{nt} {100 * r:g}%"


def finished_settings(rows: Sequence[dict], methods: Sequence[str] = SETTING_METHODS) -> List[Tuple[str, float, int]]:
    """(noise type, ratio, seed) whose rows hold a test accuracy for every method, grid order."""
    have: Dict[Tuple[str, float, int], set] = {}
    for r in rows:
        if grid._num(r.get("test_acc")) is not None:
            have.setdefault((r["noise_type"], float(r["noise_ratio"]), int(r["seed"])), set()).add(r["method"])
    order = {"SN": 0, "ASN": 1, "IDN": 2, "REAL": 3}
    done = [k for k, v in have.items() if set(methods) <= v]
    return sorted(done, key=lambda k: (order.get(k[0], 9), k[1], k[2]))


def complete_rows(rows: Sequence[dict], methods: Sequence[str] = SETTING_METHODS) -> List[dict]:
    """Only the rows of finished settings: a half-run setting never enters a table."""
    done = set(finished_settings(rows, methods))
    return [r for r in rows if (r["noise_type"], float(r["noise_ratio"]), int(r["seed"])) in done]


def verdict(rows: Sequence[dict], ref: str = "dygen", rivals: Sequence[str] = grid.RIVALS, where: str = "",
            complete: bool = False) -> str:
    """One plain sentence pair: in how many noise settings `ref` has the best mean test accuracy
    among itself and the rivals, and per setting its paired difference to the best rival."""
    ps, agg = grid.per_seed(rows, "test_acc"), grid.aggregate(rows, "test_acc")
    parts, wins, n = [], 0, 0
    for nt, r in grid.settings_of(rows):
        have = [m for m in rivals if (nt, r, m) in agg]
        if (nt, r, ref) not in agg or not have:
            continue
        n += 1
        best = max(have, key=lambda m: agg[(nt, r, m)][0])
        wins += agg[(nt, r, ref)][0] >= agg[(nt, r, best)][0]
        t = grid.paired(ps[(nt, r, ref)], ps[(nt, r, best)])
        parts.append(f"{_label(nt, r)}: {grid.signed_points(t['mean_diff'])} against {best} "
                     f"({t['wins']}/{t['ties']}/{t['losses']} over {t['n']} seed{'s' if t['n'] != 1 else ''})")
    if not n:
        return f"No noise setting of the grid{where} has finished yet."
    return (f"Where DyGen wins and where it does not, plainly{where}: DyGen has the best mean test accuracy in "
            f"{wins} of the {n} noise setting{'s' if n != 1 else ''}{'' if complete else ' finished so far'}. DyGen minus the best "
            f"non-DyGen method, in points (wins/ties/losses over seeds): " + "; ".join(parts) + ".")


def status_line(rows: Sequence[dict], total: int) -> str:
    done = finished_settings(rows)
    names = ", ".join(f"{_label(nt, r)} seed {s}" for nt, r, s in done)
    more = ("; the grid goes on in the next sessions (re-running the command resumes it)."
            if len(done) < total else ".")
    return f"Status: {len(done)} of {total} settings finished ({names or 'none'}){more}"


def readme_table(rows: Sequence[dict], spec: GridDoc) -> str:
    """`rows`: finished settings only (complete_rows)."""
    done = len(finished_settings(rows))
    head = (f"Test accuracy (%) on {spec.title}, every method fitted on the same noisy training split "
            f"({done} of {spec.total} settings{' so far' if done < spec.total else ''}; command and the rest "
            f"in docs/results.md)")
    if not done:
        return head + ": none finished yet."
    return head + ":\n\n" + grid.table(rows, "test_acc", SETTING_METHODS)


def results_status(rows: Sequence[dict], spec: GridDoc) -> str:
    """`rows`: finished settings only (complete_rows)."""
    if not finished_settings(rows):
        return status_line(rows, spec.total)
    return "\n\n".join([
        status_line(rows, spec.total),
        f"Test accuracy (%), {spec.test_set}; mean ± std over seeds (number of seeds):",
        grid.table(rows, "test_acc", SETTING_METHODS),
        "DyGen against the best non-DyGen method of each setting (paired over seeds):",
        grid.best_rival_table(rows, "test_acc"),
        "The stage-1 methods at their last epoch (not the one selected on noisy validation):",
        grid.table(rows, "test_acc_last_epoch", ["single", "cr"])])


def fill(readme: str, results: str, rows_by_dataset: Dict[str, Sequence[dict]],
         grids: Sequence[GridDoc] = GRIDS) -> Tuple[str, str]:
    """README.md and docs/results.md texts with every grid's generated blocks rebuilt from its
    rows (`rows_by_dataset[spec.dataset]`, empty when its CSV does not exist yet)."""
    for spec in grids:
        done = complete_rows(rows_by_dataset.get(spec.dataset, []))
        table_m, verdict_m, status_m = spec.markers()
        readme = replace_block(readme, table_m, readme_table(done, spec))
        complete = len(finished_settings(done)) >= spec.total
        readme = replace_block(readme, verdict_m, verdict(done, where=f" on {spec.title}", complete=complete))
        results = replace_block(results, status_m, results_status(done, spec))
    return readme, results
