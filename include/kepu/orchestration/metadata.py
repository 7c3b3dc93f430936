"""Prepare an Airflow instance in one process: write its default configuration file when it has none, migrate its
metadata database, then create or resize a pool.

``airflow db migrate`` and ``airflow pools set`` are two Airflow command lines, and each pays for the whole CLI
(about 2.5 CPU-seconds before it does anything). The embedded Airflow (:mod:`kepu.localairflow`) prepares its
database on every start with one run of this module instead::

    python -m kepu.orchestration.metadata --pool kepu_media 2 "ffmpeg slots …"

It does what those two commands do, in the environment of the instance (``AIRFLOW_HOME``,
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` …): like every ``airflow`` command line, it first writes ``airflow.cfg`` in
``AIRFLOW_HOME`` when there is none, with the instance's new Fernet key (what encrypts connections, variables and the
arguments of deferred tasks in the metadata database); then ``airflow.utils.db.upgradedb`` and
``Pool.create_or_update_pool``. The components start after it and all read that one key: were the file left to
them, each component starting at the same moment could make a key of its own, and what one encrypted another could
not read. Compose's airflow-init keeps the two commands: it runs once per deployment.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def prepare(pool: tuple[str, int, str] | None = None) -> None:
    """Write the environment's ``airflow.cfg`` if it has none, migrate its metadata database to the head; then, if
    ``pool`` is given (name, slots, description), create that pool or set its slots and description."""
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()

    from airflow.models.pool import Pool
    from airflow.utils import db

    db.upgradedb()
    if pool is not None:
        name, slots, description = pool
        Pool.create_or_update_pool(name, slots, description, include_deferred=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kepu.orchestration.metadata", description=__doc__)
    parser.add_argument("--pool", nargs=3, metavar=("NAME", "SLOTS", "DESCRIPTION"), help="create or resize a pool")
    args = parser.parse_args(argv)
    pool = None
    if args.pool:
        name, slots, description = args.pool
        if not slots.isdigit() or int(slots) < 1:
            parser.error(f"SLOTS must be a whole number of at least 1, not {slots!r}")
        pool = (name, int(slots), description)
    prepare(pool)
    print("metadata database ready" + (f"; pool {pool[0]}: {pool[1]} slot(s)" if pool else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
