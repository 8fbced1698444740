"""Landfall's Airflow side: read what Landfall lands (see `docs/airflow.md`).

- `landfall_airflow.sensors`: `LandfallBatchSensor` (deferrable, exact cursor over the commit
  chains) and `LandfallCommitCursorOperator` (commits the cursor when the run succeeded).
- `landfall_airflow.windows`: window `_SUCCESS` markers into file lists.
- `landfall_airflow.kafka`: `notification_event`, the `apply_function` for
  `KafkaMessageQueueTrigger`, and `files_of_events`.
- `landfall_airflow.chain`, `landfall_airflow.manifest`: the Airflow-free core.

Airflow is imported only by `sensors` and `triggers`, so the core and the helpers work anywhere.
"""

__version__ = "0.1.0"
