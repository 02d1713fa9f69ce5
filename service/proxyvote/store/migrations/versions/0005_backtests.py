"""backtest runs

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backtest_runs',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('backtest_id', sa.String(length=40), nullable=False),
    sa.Column('owner', sa.String(length=40), nullable=False),
    sa.Column('meetings', sa.Integer(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('figures', sa.Text(), nullable=False),
    sa.Column('figures_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_backtest_runs')),
    sa.UniqueConstraint('backtest_id', name=op.f('uq_backtest_runs_backtest_id'))
    )
    with op.batch_alter_table('backtest_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backtest_runs_owner'), ['owner'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('backtest_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backtest_runs_owner'))
    op.drop_table('backtest_runs')
