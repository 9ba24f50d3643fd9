"""Schema 2, the baseline: the store as it was before migrations existed.

Stores made before Alembic have no ``nas_alembic_version`` row, so this revision runs on every one of them as well
as on an empty database: it creates only the tables that are missing (a new store: all; a schema-1 store:
``nas_leases``) and adds the columns schema 2 brought to a schema-1 store (``nas_searches.budget`` and ``error``,
``nas_trials.tell_seq``; nullable ``ADD COLUMN``, as the pre-Alembic upgrade did). The DDL is frozen here (JSON
columns are plain ``TEXT``): later schema changes are later revisions, never edits of this one.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SCHEMA_1_ADDITIONS: dict[str, list[tuple[str, Any]]] = {
    "nas_searches": [("budget", sa.Integer()), ("error", sa.Text())], "nas_trials": [("tell_seq", sa.Integer())]}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, create in _TABLES.items():
        if not inspector.has_table(table):
            create()
        else:
            have = {c["name"] for c in inspector.get_columns(table)}
            for column, kind in _SCHEMA_1_ADDITIONS.get(table, []):
                if column not in have:
                    op.add_column(table, sa.Column(column, kind, nullable=True))


def downgrade() -> None:
    for table in reversed(list(_TABLES)):
        op.drop_table(table)


def _create_architectures() -> None:
    op.create_table('nas_architectures',
    sa.Column('hash', sa.String(length=128), nullable=False),
    sa.Column('space', sa.String(length=255), nullable=False),
    sa.Column('derivation', sa.Text(), nullable=False),
    sa.Column('arch', sa.Text(), nullable=True),
    sa.Column('onnx', sa.LargeBinary(), nullable=False),
    sa.Column('params', sa.BigInteger(), nullable=False),
    sa.Column('flops', sa.BigInteger(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('nas_architectures_pk'))
    )


def _create_meta() -> None:
    op.create_table('nas_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('nas_meta_pk'))
    )


def _create_searches() -> None:
    op.create_table('nas_searches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('space', sa.String(length=255), nullable=False),
    sa.Column('dataset', sa.String(length=255), nullable=False),
    sa.Column('config', sa.Text(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('directions', sa.Text(), nullable=False),
    sa.Column('objectives', sa.Text(), nullable=False),
    sa.Column('optuna_study_name', sa.String(length=512), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.Column('budget', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('running', 'finished', 'failed', 'interrupted')", name=op.f('nas_searches_status_ck')),
    sa.PrimaryKeyConstraint('id', name=op.f('nas_searches_pk')),
    sa.UniqueConstraint('name', name=op.f('nas_searches_name_uq'))
    )


def _create_leases() -> None:
    op.create_table('nas_leases',
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.BigInteger(), nullable=False),
    sa.Column('pid_started', sa.Double(), nullable=False),
    sa.Column('acquired', sa.DateTime(), nullable=False),
    sa.Column('heartbeat', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['search_id'], ['nas_searches.id'], name=op.f('nas_leases_search_id_fk'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('search_id', name=op.f('nas_leases_pk'))
    )


def _create_lineage() -> None:
    op.create_table('nas_lineage',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('child_hash', sa.String(length=128), nullable=False),
    sa.Column('parents', sa.Text(), nullable=False),
    sa.Column('operator', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_hash'], ['nas_architectures.hash'], name=op.f('nas_lineage_child_hash_fk')),
    sa.ForeignKeyConstraint(['search_id'], ['nas_searches.id'], name=op.f('nas_lineage_search_id_fk'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('nas_lineage_pk')),
    sa.UniqueConstraint('search_id', 'child_hash', name=op.f('nas_lineage_search_id_child_hash_uq'))
    )


def _create_scores() -> None:
    op.create_table('nas_scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('arch_hash', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('value_kind', sa.String(length=8), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.CheckConstraint("value_kind IN ('finite', 'nan', 'inf', '-inf')", name=op.f('nas_scores_value_kind_ck')),
    sa.ForeignKeyConstraint(['arch_hash'], ['nas_architectures.hash'], name=op.f('nas_scores_arch_hash_fk')),
    sa.ForeignKeyConstraint(['search_id'], ['nas_searches.id'], name=op.f('nas_scores_search_id_fk'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('nas_scores_pk')),
    sa.UniqueConstraint('search_id', 'arch_hash', 'name', name=op.f('nas_scores_search_id_arch_hash_name_uq'))
    )


def _create_trials() -> None:
    op.create_table('nas_trials',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('arch_hash', sa.String(length=128), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('resources', sa.Text(), nullable=False),
    sa.Column('epochs', sa.Text(), nullable=False),
    sa.Column('final', sa.Text(), nullable=True),
    sa.Column('val_acc', sa.Double(), nullable=True),
    sa.Column('test_acc', sa.Double(), nullable=True),
    sa.Column('objective_values', sa.Text(), nullable=True),
    sa.Column('optuna_trial_number', sa.Integer(), nullable=True),
    sa.Column('optuna_pending', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('finished', sa.DateTime(), nullable=True),
    sa.Column('tell_seq', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'ok', 'stopped', 'failed')", name=op.f('nas_trials_status_ck')),
    sa.ForeignKeyConstraint(['arch_hash'], ['nas_architectures.hash'], name=op.f('nas_trials_arch_hash_fk')),
    sa.ForeignKeyConstraint(['search_id'], ['nas_searches.id'], name=op.f('nas_trials_search_id_fk'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('nas_trials_pk'))
    )
    with op.batch_alter_table('nas_trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('nas_trials_search_id_arch_hash_ix'), ['search_id', 'arch_hash'], unique=False)
        batch_op.create_index(batch_op.f('nas_trials_search_id_status_ix'), ['search_id', 'status'], unique=False)


_TABLES = {
    "nas_architectures": _create_architectures,
    "nas_meta": _create_meta,
    "nas_searches": _create_searches,
    "nas_leases": _create_leases,
    "nas_lineage": _create_lineage,
    "nas_scores": _create_scores,
    "nas_trials": _create_trials,
}
