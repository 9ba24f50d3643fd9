"""Pictures in optuna-dashboard: each finished candidate's Optuna trial gets its architecture picture as an SVG
artifact (beside its ONNX artifact) and a short trial note that shows the picture and the key numbers.

optuna-dashboard lists a trial's artifacts (image artifacts with a preview) and renders its note as Markdown,
images included, on the trial's page; the image URL is the dashboard's own artifact route
``/artifacts/<study_id>/<trial_id>/<artifact_id>``, as its note editor writes it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

__all__ = ["PICTURE_MIMETYPE", "attach_picture", "trial_note"]

PICTURE_MIMETYPE = "image/svg+xml"
_log = logging.getLogger(__name__)


def trial_note(view: Any, picture_url: str | None) -> str:
    """The Markdown note of a trial: the numbers of its architecture, its picture and its derivation."""
    s = view.summary()
    lines = [f"**{s['space']}** architecture `{s['hash'][:12]}`: {s['params']:,} params, {s['flops']:,} FLOPs, "
             f"depth {s['depth']}, {s['ops']} ops, input {'x'.join(map(str, s['input_shape']))}", ""]
    if picture_url:
        lines += [f"![architecture {s['hash'][:12]}]({picture_url})", ""]
    if s["arch"]:
        lines += [f"arch: `{s['arch']}`", ""]
    derivation = s["derivation"] if len(s["derivation"]) <= 1500 else s["derivation"][:1497] + "..."
    lines += [f"derivation: `{derivation}`", "", f"`nas show {s['hash']} --db URL --out {s['hash'][:12]}.svg` "
              "draws it again"]
    return "\n".join(lines)


def attach_picture(storage: Any, artifact_store: Any, study_name: str, trial: Any, onnx: bytes) -> str | None:
    """Give a running Optuna trial the picture of its architecture (``<hash>.svg``) and a trial note.

    ``trial`` is the :class:`optuna.trial.FrozenTrial` (in the study ``study_name`` of ``storage``; its artifacts
    in ``artifact_store``) of a candidate whose ONNX bytes are ``onnx`` (they carry
    the space and derivation the graph is rebuilt from). Optuna only lets a running trial take artifacts, so call
    it before the trial is given its final state. Idempotent: a trial that has the picture already is left as it is.
    Trials of benchmark mode (user attribute ``resources`` ``{"evaluator": "table"}``) get none: they were looked
    up, not trained, and drawing (~0.1-0.2 s) would slow a table search by a third; ``nas show HASH --db URL``
    draws any of them.

    A picture is a convenience: any failure (Graphviz missing, a foreign ONNX file, a database error) is logged
    as a warning and ``None`` is returned, never raised into the search. Returns the artifact id otherwise.
    """
    from optuna.artifacts import get_all_artifact_meta, upload_artifact
    from optuna.trial import TrialState

    try:
        from nas.viz.picture import render_picture
        from nas.viz.source import from_onnx

        if trial.state != TrialState.RUNNING:
            return None
        if (trial.user_attrs.get("resources") or {}).get("evaluator") == "table":
            return None  # a table look-up, not a trained candidate: a picture would cost a third of its time
        view = from_onnx(onnx, source="store")
        filename = f"{view.hash}.svg"
        for meta in get_all_artifact_meta(trial, storage=storage):
            if meta.filename == filename:
                return meta.artifact_id
        svg = render_picture(view.graph, "svg")
        with tempfile.TemporaryDirectory(prefix="nas-picture-") as folder:
            path = os.path.join(folder, filename)
            with open(path, "wb") as f:
                f.write(svg)
            artifact_id = upload_artifact(artifact_store=artifact_store, file_path=path, study_or_trial=trial,
                                          storage=storage, mimetype=PICTURE_MIMETYPE)
        study_id = storage.get_study_id_from_name(study_name)
        _save_note(storage, study_name, trial._trial_id,
                   trial_note(view, f"/artifacts/{study_id}/{trial._trial_id}/{artifact_id}"))
        return artifact_id
    except Exception as err:  # noqa: BLE001 - a missing picture must never fail a trial
        _log.warning("no architecture picture for Optuna trial %s: %s: %s", getattr(trial, "number", "?"),
                     type(err).__name__, err)
        return None


def _save_note(storage: Any, study_name: str, trial_id: int, body: str) -> None:
    """optuna-dashboard's :func:`optuna_dashboard.save_note` on the trial (it needs a live ``optuna.Trial``)."""
    import optuna
    from optuna_dashboard import save_note

    study = optuna.load_study(study_name=study_name, storage=storage)
    save_note(optuna.Trial(study, trial_id), body)
