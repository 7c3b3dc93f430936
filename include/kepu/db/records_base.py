"""What the record mixins (judging, awards) use of :class:`~kepu.db.repository.Records`, for type checking."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


class RecordsBase:
    """The engine and the transaction helpers that :class:`~kepu.db.repository.Records` defines."""

    engine: Engine

    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

        def _lock_clause(self, stmt: sa.Select[Any]) -> sa.Select[Any]: ...

        def _audit(
            self, conn: Connection, actor: str, action: str, entity: str, entity_id: str, detail: Mapping[str, Any]
        ) -> None: ...
