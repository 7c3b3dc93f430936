"""The Airflow-facing side of kepu: the assets that connect the DAGs, the kit every DAG is built with and the
deferrable wait for the judges' returned sheets (:mod:`kepu.orchestration.sensors`).

DAG files import these modules while they are parsed, so nothing here opens a connection or imports the heavy
domain modules at import time; the domain is imported inside the tasks.
"""
