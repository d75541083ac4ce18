"""realized_fills, and realized_cost_bps beside the assumed cost on every economic row

`cvn fills import` loads realized fills into realized_fills (unique on the fill, so a second import of a
file adds nothing). A results or baselines row whose test window the fills cover is labelled
cost_basis 'realized_fills' and holds the realized round trip in realized_cost_bps; every other row keeps
'backtested_assumed' and NULL, which is what every existing row gets here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("finetune_results", "finetune_baselines")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("realized_cost_bps", sa.Float, nullable=True))
    # Spelled out rather than imported from the live schema: a migration must keep meaning what it meant.
    op.create_table(
        "realized_fills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("base", sa.String(20), nullable=False),
        sa.Column("quote", sa.String(20), nullable=False),
        sa.Column("crypto", sa.String(40), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("fee", sa.Float, nullable=False),
        sa.Column("fee_currency", sa.String(20), nullable=False),
        sa.Column("notional_quote", sa.Float, nullable=False),
        sa.Column("fee_quote", sa.Float, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_row", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "filled_at", "base", "quote", "side", "price", "quantity", name="uq_realized_fills_key"
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name="ck_realized_fills_side"),
        sa.CheckConstraint("price > 0 AND quantity > 0 AND fee >= 0", name="ck_realized_fills_amounts"),
    )
    op.create_index("ix_realized_fills_crypto_month", "realized_fills", ["crypto", "month"])


def downgrade() -> None:
    op.drop_index("ix_realized_fills_crypto_month", table_name="realized_fills")
    op.drop_table("realized_fills")
    for table in TABLES:
        # Without the realized figure no row may claim it: back to the assumption it was computed at.
        op.execute(
            sa.text(
                f"UPDATE {table} SET cost_basis = 'backtested_assumed' WHERE cost_basis = 'realized_fills'"
            )
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_column("realized_cost_bps")
