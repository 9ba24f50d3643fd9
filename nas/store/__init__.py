"""The search's one SQL store, shared with Optuna's RDB storage in the same database.

.. code-block:: python

    from nas.store import Store, default_db_url

    with Store(default_db_url()) as store:          # sqlite:///nas.db, artifacts in nas_artifacts/
        store.create_search("s1", space="einspace", dataset="digits", config={}, seed=0,
                            objectives=["val_acc", "params"], directions=["maximize", "minimize"])
        store.add_architecture(h, space="einspace", derivation=d, arch=None, onnx=onnx, params=p, flops=f)
        trial_id = store.start_trial("s1", h, generation=0, resources={"cpu": 1})
        store.finish_trial(trial_id, status="ok", epochs=epochs, final=epochs[-1],
                           objective_values=[epochs[-1]["val_acc"], p])

Every trained candidate is also an Optuna trial (with its ONNX file as an artifact) in the study named after the
search, so ``optuna-dashboard URL --artifact-dir DIR`` shows it (:meth:`Store.dashboard_command`). Tables:
:mod:`nas.store.schema`.
"""

from nas.statuses import SearchStatus, TrialStatus
from nas.store.store import (
                             ArchitectureRecord,
                             LeaseError,
                             LeaseRecord,
                             LineageRecord,
                             ReconcileReport,
                             ScoreRecord,
                             SearchRecord,
                             Store,
                             StoreError,
                             StoreUnavailableError,
                             TrialRecord,
                             default_db_url,
)

__all__ = ["ArchitectureRecord", "LeaseError", "LeaseRecord", "LineageRecord", "ReconcileReport", "ScoreRecord",
           "SearchRecord", "SearchStatus", "Store", "StoreError", "StoreUnavailableError", "TrialRecord", "TrialStatus",
           "default_db_url"]
