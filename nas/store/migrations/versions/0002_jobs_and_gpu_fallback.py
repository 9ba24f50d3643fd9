"""Schema 3: a search remembers the Ray job that runs it (``nas search submit``), a trial whether it asked for a GPU
but trained on the CPU.

Adds ``nas_searches.job_id`` and ``nas_searches.job_address`` (the job server's address), both nullable, and
``nas_trials.gpu_fallback`` (false for every existing trial).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nas_searches") as batch:
        batch.add_column(sa.Column("job_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("job_address", sa.Text(), nullable=True))
    with op.batch_alter_table("nas_trials") as batch:
        batch.add_column(sa.Column("gpu_fallback", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("nas_trials") as batch:
        batch.drop_column("gpu_fallback")
    with op.batch_alter_table("nas_searches") as batch:
        batch.drop_column("job_address")
        batch.drop_column("job_id")
