"""diagnostic_verdicts: what the diagnostics found on each audited cell (and model), keyed like the result
rows, with the reproducibility anchor's cross-reference and whether the audit was a light one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diagnostic_verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("diagnostic", sa.String(64), nullable=False),
        sa.Column("consumes", sa.String(32), nullable=False),
        sa.Column("crypto", sa.String(40), nullable=False),
        sa.Column("fold_id", sa.String(64), nullable=False),
        sa.Column("feature_set", sa.String(64), nullable=True),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("figures", sa.Text, nullable=True),
        sa.Column("crossref_status", sa.String(32), nullable=True),
        sa.Column("anchor_available", sa.Boolean, nullable=True),
        sa.Column("audit_mode", sa.String(16), nullable=False),
        sa.Column("data_hash", sa.String(64), nullable=True),
        sa.Column("elapsed_s", sa.Float, nullable=True),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('PASS', 'WARN', 'FAIL', 'NOT_APPLICABLE', 'SKIPPED', 'INCONCLUSIVE_TOOLING')",
            name="ck_diagnostic_verdicts_status",
        ),
    )
    op.create_index(
        "uq_diagnostic_verdicts_key",
        "diagnostic_verdicts",
        [
            "run_id",
            "strategy",
            "diagnostic",
            "crypto",
            "fold_id",
            sa.text("coalesce(feature_set, '')"),
            sa.text("coalesce(variant, '')"),
        ],  # fmt: skip
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_diagnostic_verdicts_key", table_name="diagnostic_verdicts")
    op.drop_table("diagnostic_verdicts")
