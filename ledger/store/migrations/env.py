"""Alembic's environment for the ledger's schema; the models are the target.

Run through :mod:`ledger.store.schema` (``carbon-ledger db upgrade``), which hands over an open
connection. A new revision, after changing ``ledger/store/models.py``::

    python -c "from ledger.store.schema import new_revision; new_revision('0002', 'what changed', 'sqlite:///tmp.db')"

autogenerates it against a database migrated to the current head; review it by hand.
SQLite alters tables in batch mode (copy and rename), so name every constraint.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from ledger.store.models import Base
from ledger.store.schema import built_on


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=True, compare_type=True, compare_server_default=True,
                      include_object=built_on(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url", ""),
                           poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
