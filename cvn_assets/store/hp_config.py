"""The `ftf_config` table: read, list, and set with an append-only history row per change."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cvn_assets.store.schema import ftf_config, ftf_config_history


def get_value(conn: sa.Connection, key: str) -> str | None:
    return conn.execute(sa.select(ftf_config.c.value).where(ftf_config.c.key == key)).scalar()


def list_values(conn: sa.Connection, prefix: str = "") -> list[sa.Row]:
    c = ftf_config.c
    return conn.execute(
        sa.select(c.key, c.value, c.updated_by, c.updated_at).where(c.key.startswith(prefix)).order_by(c.key)
    ).all()


def set_value(engine: sa.Engine, key: str, value: str, who: str) -> bool:
    """Set `key` to `value` in one transaction with its history row. Same value: no change, returns False."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        old = conn.execute(
            sa.select(ftf_config.c.value).where(ftf_config.c.key == key).with_for_update()
        ).scalar()
        if old == value:
            return False
        if old is None:
            conn.execute(sa.insert(ftf_config).values(key=key, value=value, updated_by=who, updated_at=now))
        else:
            conn.execute(
                sa.update(ftf_config)
                .where(ftf_config.c.key == key)
                .values(value=value, updated_by=who, updated_at=now)
            )
        conn.execute(
            sa.insert(ftf_config_history).values(
                key=key, old_value=old, new_value=value, changed_by=who, changed_at=now
            )
        )
    return True


def history(conn: sa.Connection, key: str) -> list[sa.Row]:
    h = ftf_config_history.c
    return conn.execute(
        sa.select(h.old_value, h.new_value, h.changed_by, h.changed_at).where(h.key == key).order_by(h.id)
    ).all()
